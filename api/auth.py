"""Who is calling: API keys (`t2m_…`, stored hashed), RS256 JWTs checked against a JWKS (Clerk
session tokens included, from the header or Clerk's `__session` cookie), or — on a loopback bind
only — the configured dev identity. Media URLs carry short-lived signed tokens instead, because a
`<video>` element cannot send headers.
"""

from __future__ import annotations

import asyncio
import time

import jwt
from fastapi import HTTPException, status

from t2m.config import Settings, is_loopback
from t2m.db import KeyStore, Principal

MEDIA_TOKEN_TTL_S = 6 * 3600


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": "Bearer"})


class Authenticator:
    def __init__(self, settings: Settings, keys: KeyStore, secret: str) -> None:
        self.settings = settings
        self.keys = keys
        self.secret = secret
        self.jwks = jwt.PyJWKClient(settings.jwks_url, lifespan=300) if settings.jwks_url else None
        self.dev = settings.dev_user if is_loopback(settings.api_host) else None

    async def authenticate(
        self, authorization: str | None, session_cookie: str | None
    ) -> Principal:
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _unauthorized("Authorization header must be 'Bearer <token>'")
            return await self._token(token.strip())
        if session_cookie and self.jwks:
            return await self._jwt(session_cookie)
        if self.dev:
            return Principal(self.dev, admin=True)
        raise _unauthorized("authentication required: send 'Authorization: Bearer <token>'")

    async def _token(self, token: str) -> Principal:
        if token.startswith(KeyStore.PREFIX):
            principal = await self.keys.verify(token)
            if principal is None:
                raise _unauthorized("invalid or revoked API key")
            return principal
        if self.jwks is None:
            raise _unauthorized("invalid token: not an API key, and no JWKS is configured")
        return await self._jwt(token)

    async def _jwt(self, token: str) -> Principal:
        try:
            if self.jwks is None:
                raise jwt.PyJWTError("no JWKS is configured")
            key = await asyncio.to_thread(self.jwks.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["sub", "exp"], "verify_aud": bool(self.settings.jwt_audience)},
            )
        except jwt.PyJWTError as e:
            raise _unauthorized(f"invalid token: {e}") from None
        return Principal(str(claims["sub"]), admin=bool(claims.get(self.settings.jwt_admin_claim)))

    def media_token(self, job_id: str) -> str:
        payload = {"sub": job_id, "scope": "media", "exp": int(time.time()) + MEDIA_TOKEN_TTL_S}
        return jwt.encode(payload, self.secret, algorithm="HS256")

    def media_token_valid(self, token: str, job_id: str) -> bool:
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return False
        return claims.get("sub") == job_id and claims.get("scope") == "media"
