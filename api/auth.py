"""Who is calling: API keys (`t2m_…`, stored hashed), RS256 JWTs checked against a JWKS (Clerk
session tokens included, from the header or Clerk's `__session` cookie), or — on a loopback bind
only — the configured dev identity. Media URLs carry short-lived signed tokens instead, because a
`<video>` element cannot send headers.

Credentials a browser sends by itself (the dev identity, the session cookie) are "ambient": a page
on another site could make the browser use them. Requests relying on them must therefore name this
site (DNS rebinding: the dev identity answers only a loopback `Host`) and, when they change state,
come from this site's own pages (`Origin`, `Sec-Fetch-Site`) with a JSON body, which a cross-site
form cannot send without a CORS preflight that this API never grants.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import jwt
from fastapi import HTTPException, status
from starlette.requests import HTTPConnection

from t2m.catalog.api_keys import KeyStore, Principal
from t2m.config import Settings, is_loopback
from t2m.vocabulary.text import user_name

MEDIA_TOKEN_TTL_S = 30 * 60
"""Media URLs are valid this long; a token promising more is refused."""
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAME_SITE_FETCH = frozenset({"same-origin", "none"})


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": "Bearer"})


def host_name(host: str) -> str:
    """The name in a `Host` header, without its port or IPv6 brackets."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _has_body(conn: HTTPConnection) -> bool:
    length = conn.headers.get("content-length")
    return "transfer-encoding" in conn.headers or (length is not None and length.strip() != "0")


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def check_same_site(conn: HTTPConnection) -> None:
    """Refuse a state-changing request that another site's page could have made (403/415)."""
    if conn.scope.get("method") not in STATE_CHANGING:
        return
    fetch_site = conn.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in SAME_SITE_FETCH:
        raise HTTPException(403, f"cross-site request refused (Sec-Fetch-Site: {fetch_site})")
    origin = conn.headers.get("origin")
    host = conn.headers.get("host", "")
    if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
        raise HTTPException(403, f"cross-origin request refused: Origin {origin} is not {host}")
    if _has_body(conn) and not _is_json(conn.headers.get("content-type")):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send the request body as JSON (Content-Type: application/json)",
        )


class Authenticator:
    def __init__(self, settings: Settings, keys: KeyStore, secret: str) -> None:
        self.settings = settings
        self.keys = keys
        self.secret = secret
        self.jwks = jwt.PyJWKClient(settings.jwks_url, lifespan=300) if settings.jwks_url else None
        self.dev = settings.dev_user if is_loopback(settings.api_host) else None
        if self.dev:
            try:
                user_name(self.dev)
            except ValueError as e:
                raise ValueError(f"T2M_DEV_USER {self.dev!r}: {e}") from None

    async def authenticate(self, conn: HTTPConnection) -> Principal:
        """The caller, from the request's headers only (its body is never read here)."""
        authorization = conn.headers.get("authorization")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _unauthorized("Authorization header must be 'Bearer <token>'")
            return await self._token(token.strip())
        session_cookie = conn.cookies.get("__session")
        if session_cookie and self.jwks:
            check_same_site(conn)
            return await self._jwt(session_cookie)
        if self.dev:
            host = conn.headers.get("host", "")
            if not is_loopback(host_name(host)):
                raise _unauthorized(
                    f"authentication required: without credentials only requests to a loopback"
                    f" host (localhost, 127.0.0.1, [::1]) are served, and Host is {host!r}"
                )
            check_same_site(conn)
            return Principal(self.dev, admin=True)
        raise _unauthorized("authentication required: send 'Authorization: Bearer <token>'")

    async def _token(self, token: str) -> Principal:
        if token.startswith(KeyStore.PREFIX):
            principal = await self.keys.verify(token)
            if principal is None:
                raise _unauthorized("invalid or revoked API key")
            return _named(principal, "this API key's user")
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
        # PyJWT has checked that `sub` is a string. Only JSON `true` makes an admin: a string
        # "false" is truthy, and so is any other junk.
        admin = claims.get(self.settings.jwt_admin_claim) is True
        return _named(Principal(claims["sub"], admin=admin), "the token's 'sub'")

    def media_token(self, job_id: str, owner: str) -> str:
        """A signed, short-lived token for one job's media, bound to the job's owner."""
        payload = {
            "sub": job_id,
            "owner": owner,
            "scope": "media",
            # whole minutes: a status that names media URLs reads the same within a minute
            "exp": int(time.time()) // 60 * 60 + MEDIA_TOKEN_TTL_S,
        }
        return jwt.encode(payload, self.secret, algorithm="HS256")

    def media_token_owner(self, token: str, job_id: str) -> str | None:
        """The owner a valid media token for `job_id` names; None for any other token."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                options={"require": ["exp", "sub", "owner", "scope"]},
            )
        except jwt.PyJWTError:
            return None
        valid = (
            claims["sub"] == job_id
            and claims["scope"] == "media"
            and isinstance(claims["owner"], str)
            and claims["exp"] <= time.time() + MEDIA_TOKEN_TTL_S + 60
        )
        return claims["owner"] if valid else None


def _named(principal: Principal, what: str) -> Principal:
    try:
        user_name(principal.user)
    except ValueError as e:
        raise _unauthorized(f"{what} is not a valid user name: {e}") from None
    return principal
