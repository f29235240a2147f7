"""RS256 JWTs checked against a JWKS served on loopback, the dev identity, and the bind guard."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from t2m.config import Settings, check_bind
from tests.helpers import asgi_client, catalog_request

ISSUER, AUDIENCE = "https://clerk.example.test", "t2m"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    jwk = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key())) | {"kid": "k1", "use": "sig"}
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


def token(key: rsa.RSAPrivateKey, **claims: object) -> str:
    """A signed JWT; a claim given as None is left out."""
    payload = {"sub": "user_2abc", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600}
    payload = {k: v for k, v in (payload | claims).items() if v is not None}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
async def jwt_api(api_settings: Settings, jwks_url: str) -> AsyncIterator[httpx.AsyncClient]:
    s = api_settings.model_copy(
        update={"jwks_url": jwks_url, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    )
    async with asgi_client(s) as http:
        yield http


async def test_valid_jwt_is_accepted_from_header_and_session_cookie(
    jwt_api: httpx.AsyncClient, signing_key: rsa.RSAPrivateKey, jobs
) -> None:
    await jobs.create(
        "video-11111111-1111-1111-1111-111111111111", catalog_request("user_2abc"), "low"
    )
    good = token(signing_key)
    r = await jwt_api.get("/api/v1/jobs", headers={"Authorization": f"Bearer {good}"})
    assert r.status_code == 200 and {i["owner"] for i in r.json()["items"]} == {"user_2abc"}
    jwt_api.cookies.set("__session", good)
    assert (await jwt_api.get("/api/v1/jobs")).status_code == 200
    jwt_api.cookies.clear()
    admin = token(signing_key, sub="boss", t2m_admin=True)
    r = await jwt_api.get(
        "/api/v1/jobs?owner=user_2abc", headers={"Authorization": f"Bearer {admin}"}
    )
    assert r.status_code == 200 and r.json()["total"] >= 1


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "someone-else"}, "Audience doesn't match"),
        ({"iss": "https://evil.test"}, "Invalid issuer"),
        ({"exp": int(time.time()) - 60}, "Signature has expired"),
        ({"sub": None}, "Token is missing the"),
    ],
)
async def test_invalid_jwts_are_401(
    jwt_api: httpx.AsyncClient, signing_key: rsa.RSAPrivateKey, claims: dict, reason: str
) -> None:
    r = await jwt_api.get(
        "/api/v1/jobs", headers={"Authorization": f"Bearer {token(signing_key, **claims)}"}
    )
    assert r.status_code == 401 and reason in r.json()["detail"]


@pytest.mark.parametrize("claim", ["false", "true", 1, "yes", [True], {"admin": True}])
async def test_only_json_true_makes_an_admin(
    jwt_api: httpx.AsyncClient, signing_key: rsa.RSAPrivateKey, claim: object
) -> None:
    headers = {"Authorization": f"Bearer {token(signing_key, sub='mallory', t2m_admin=claim)}"}
    r = await jwt_api.get("/api/v1/jobs", params={"owner": "*"}, headers=headers)
    assert r.status_code == 403, claim


@pytest.mark.parametrize("sub", ["*", "ali*ce", "bob\x00", "eve\n", " pad", "a\ud800", 42])
async def test_a_sub_that_is_not_a_user_name_is_refused(
    jwt_api: httpx.AsyncClient, signing_key: rsa.RSAPrivateKey, sub: object
) -> None:
    r = await jwt_api.get(
        "/api/v1/jobs", headers={"Authorization": f"Bearer {token(signing_key, sub=sub)}"}
    )
    assert r.status_code == 401 and "sub" in r.json()["detail"].lower(), r.text


async def test_a_token_signed_by_another_key_is_refused(jwt_api: httpx.AsyncClient) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r = await jwt_api.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token(other)}"})
    assert r.status_code == 401 and "Signature verification failed" in r.text


async def test_dev_identity_on_loopback(settings: Settings) -> None:
    async with asgi_client(settings) as http:  # the embedded default: loopback + dev user
        r = await http.get("/api/v1/jobs")
        assert r.status_code == 200


def test_non_loopback_bind_with_dev_identity_refuses_to_start(settings: Settings) -> None:
    with pytest.raises(SystemExit, match="refusing to bind 0.0.0.0"):
        check_bind(settings.model_copy(update={"api_host": "0.0.0.0"}))
    check_bind(settings.model_copy(update={"api_host": "0.0.0.0", "dev_user": None}))
    check_bind(settings)  # loopback is fine
