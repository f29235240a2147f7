"""Malformed requests: every one gets a 4xx that names the problem; none gets a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

GEN = "/api/v1/videos/generate"
JOB = "video-00000000-0000-0000-0000-000000000000"


def cfg(**fields) -> dict:
    return {"configuration": {"topic": "Pythagorean Theorem"} | fields}


CASES: list[tuple[Any, ...]] = [
    ("no body", "POST", GEN, {}, None, 422, "Field required"),
    ("broken JSON", "POST", GEN, {"Content-Type": "application/json"}, b'{"configuration":', 422, "JSON decode error"),
    ("body is an array", "POST", GEN, {}, [], 422, "valid dictionary"),
    ("not JSON", "POST", GEN, {"Content-Type": "text/plain"}, b"topic=x", 422, "valid dictionary"),
    ("configuration missing", "POST", GEN, {}, {"priority": "high"}, 422, "configuration"),
    ("topic missing", "POST", GEN, {}, {"configuration": {}}, 422, "topic"),
    ("topic too short", "POST", GEN, {}, cfg(topic="ab"), 422, "at least 3 characters"),
    ("topic blank", "POST", GEN, {}, cfg(topic="     "), 422, "at least 3 characters"),
    ("topic too long", "POST", GEN, {}, cfg(topic="x" * 501), 422, "at most 500 characters"),
    ("topic not a string", "POST", GEN, {}, cfg(topic=123), 422, "valid string"),
    ("context too long", "POST", GEN, {}, cfg(context="x" * 2001), 422, "at most 2000 characters"),
    ("unknown quality", "POST", GEN, {}, cfg(quality="huge"), 422, "'low', 'medium', 'high' or 'ultra'"),
    ("unknown priority", "POST", GEN, {}, cfg() | {"priority": "asap"}, 422, "'low', 'normal', 'high' or 'urgent'"),
    ("model not allowed", "POST", GEN, {}, cfg(model="openai/gpt-4o"), 422, "allowed: ['offline/templates', 'scripted/test']"),
    ("use_rag not boolean", "POST", GEN, {}, cfg(use_rag="maybe"), 422, "valid boolean"),
    ("subtitles flag is a list", "POST", GEN, {}, cfg(enable_subtitles=[1]), 422, "valid boolean"),
    ("style preferences not a map", "POST", GEN, {}, cfg(style_preferences=["dark"]), 422, "valid dictionary"),
    ("style preference not text", "POST", GEN, {}, cfg(style_preferences={"theme": 3}), 422, "valid string"),
    ("style preference too long", "POST", GEN, {}, cfg(style_preferences={"theme": "x" * 201}), 422, "at most 200"),
    ("unknown configuration field", "POST", GEN, {}, cfg(colour="red"), 422, "Extra inputs are not permitted"),
    ("unknown top-level field", "POST", GEN, {}, cfg() | {"urgent": True}, 422, "Extra inputs are not permitted"),
    ("unknown voice", "POST", GEN, {}, cfg(voice="xx-nope"), 422, "unknown voice 'xx-nope'"),
    ("unknown Festival voice", "POST", GEN, {}, cfg(voice="festival:us_nope"), 422, "unknown voice 'festival:us_nope'"),
    ("voice not allowed", "POST", GEN, {}, cfg(voice="openai/tts-1:nova"), 422, "voice 'openai/tts-1:nova' is not allowed"),
    ("idempotency key too long", "POST", GEN, {"Idempotency-Key": "k" * 201}, cfg(), 422, "idempotency-key"),
    ("malformed job id", "GET", "/api/v1/videos/jobs/abc/status", {}, None, 422, "should match pattern"),
    ("unknown job", "GET", f"/api/v1/videos/jobs/{JOB}/status", {}, None, 404, "not found"),
    ("unknown job cancel", "POST", f"/api/v1/jobs/{JOB}/cancel", {}, None, 404, "not found"),
    ("malformed id on delete", "DELETE", "/api/v1/jobs/x", {}, None, 422, "should match pattern"),
    ("priority not text", "POST", GEN, {}, cfg() | {"priority": 5}, 422, "'low', 'normal', 'high' or 'urgent'"),
    ("page zero", "GET", "/api/v1/jobs?page=0", {}, None, 422, "greater than or equal to 1"),
    ("page size too big", "GET", "/api/v1/jobs?page_size=1000", {}, None, 422, "less than or equal to 100"),
    ("unknown status filter", "GET", "/api/v1/jobs?status=bogus", {}, None, 422, "'queued', 'running'"),
    ("bad date filter", "GET", "/api/v1/jobs?created_after=yesterday", {}, None, 422, "valid datetime"),
    ("date before year 1 in UTC", "GET", "/api/v1/jobs?created_after=0001-01-01T00:00:00%2B01:00", {}, None, 422, "created_after"),
    ("date past year 9999 in UTC", "GET", "/api/v1/jobs?created_before=9999-12-31T23:59:59-01:00", {}, None, 422, "between 0001-01-01 and 9999-12-31 in UTC"),
    ("unknown path", "GET", "/api/v1/nope", {}, None, 404, "Not Found"),
    ("wrong method", "PUT", "/api/v1/jobs", {}, None, 405, "Method Not Allowed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "url", "headers", "payload", "code", "text"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
async def test_malformed_request(
    api: httpx.AsyncClient, keys: dict, method, url, headers, payload, code, text
) -> None:
    kwargs = {"content": payload} if isinstance(payload, bytes) else {"json": payload}
    if payload is None:
        kwargs = {}
    r = await api.request(method, url, headers=keys["alice"] | headers, **kwargs)
    assert r.status_code == code, r.text
    assert text.lower() in r.text.lower()
    assert "Traceback" not in r.text


@pytest.mark.parametrize(
    ("authorization", "text"),
    [
        (None, "authentication required"),
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"),
        ("Bearer", "must be 'Bearer <token>'"),
        ("Bearer t2m_not-a-real-key", "invalid or revoked API key"),
        ("Bearer abc.def.ghi", "no JWKS is configured"),
    ],
)
async def test_bad_credentials_are_401(api: httpx.AsyncClient, authorization, text) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    r = await api.get("/api/v1/jobs", headers=headers)
    assert r.status_code == 401 and text in r.text
    assert r.headers["www-authenticate"] == "Bearer"


async def test_every_problem_at_once_each_under_its_field(
    api: httpx.AsyncClient, keys: dict
) -> None:
    """A bad voice is reported with a bad style, not after it is fixed; each problem under its
    own field (the accent colour under `style_preferences.accent_color`), in the rule's words."""
    style = {"theme": "neon", "accent_color": "ugly", "mood": "calm"}
    body = cfg(topic="ab", quality="huge", voice="xx-nope", style_preferences=style)
    r = await api.post(GEN, json=body, headers=keys["alice"])
    assert r.status_code == 422, r.text
    found = {tuple(d["loc"]): d["msg"] for d in r.json()["detail"]}
    at = ("body", "configuration")
    assert set(found) == {
        (*at, "topic"),
        (*at, "quality"),
        (*at, "voice"),
        (*at, "style_preferences", "theme"),
        (*at, "style_preferences", "accent_color"),
    }
    assert found[(*at, "style_preferences", "accent_color")].startswith("accent_color must be")
    assert found[(*at, "voice")].startswith("unknown voice 'xx-nope'")
    assert not [m for m in found.values() if m.startswith(("Value error", "Assertion failed"))]

    # Only the deployment's rules broken (pydantic is content): all of those at once too.
    body = cfg(model="openai/gpt-4o", voice="xx-nope")
    r = await api.post(GEN, json=body, headers=keys["alice"])
    assert r.status_code == 422, r.text
    assert [d["loc"][2:] for d in r.json()["detail"]] == [["model"], ["voice"]]
