"""The API under abuse: huge bodies, junk methods, many event streams, cross-site and rebinding
requests, forged tokens and names, unstorable text, replayed Idempotency-Keys."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import string
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import jwt
import pytest

from api.auth import MEDIA_TOKEN_TTL_S
from api.limits import Limits
from api.main import create_app
from t2m.catalog import api_keys, db
from t2m.config import Settings
from t2m.vocabulary.job import JobRecord, JobStatus
from tests.helpers import (
    T2M,
    api_process,
    asgi_client,
    catalog_request,
    metric_series,
    proc_status_kib,
    reset_peak_rss,
    serve,
)

GENERATE = "/api/v1/videos/generate"
MIB = 1 << 20


def body(topic: str = "Circles and squares", **cfg: object) -> dict:
    return {"configuration": {"topic": topic, "quality": "low"} | cfg}


async def catalog_job(jobs: db.JobStore, owner: str, status: str = "completed") -> str:
    """A job as the catalog records it, with no workflow behind it."""
    row = await jobs.create(f"video-{uuid.uuid4()}", catalog_request(owner), "normal")
    progress = JobStatus(job_id=row.id, status=status, percentage=100)
    await jobs.record(
        JobRecord(job_id=row.id, owner=owner, request=row.request, status=status, progress=progress)
    )
    return row.id


@pytest.fixture(scope="module")
async def api_proc(
    postgres_url: str, temporal_env, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[str, int]]:
    """The API in its own process, API keys required (no dev identity)."""
    settings = Settings(
        database_url=postgres_url,
        data_dir=tmp_path_factory.mktemp("abuse"),
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_namespace=temporal_env.client.namespace,
        task_queue_prefix=f"abuse-{uuid.uuid4().hex[:8]}",
    )
    async with api_process(settings, T2M_DEV_USER="") as served:
        yield served


async def upload(
    port: int, size: int, headers: dict[str, str], chunked: bool
) -> tuple[int | None, int]:
    """POST `size` bytes over a raw connection, pushing on for as long as the API lets us.

    Returns the status (None when the API reset the connection before its answer could be read:
    it closes a connection whose body it left unread) and the body bytes written.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(size)}
    head = [f"POST {GENERATE} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    head += [f"{k}: {v}" for k, v in (headers | framing).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    answer = asyncio.ensure_future(reader.readline())
    await asyncio.wait([answer], timeout=1)  # an API that refuses without reading does so now
    block = b"x" * MIB
    frame = b"%x\r\n%b\r\n" % (len(block), block) if chunked else block
    sent = 0
    try:
        with contextlib.suppress(ConnectionError):
            while sent < size:
                writer.write(frame)
                await asyncio.wait_for(writer.drain(), 30)
                sent += len(block)
        try:
            return int((await asyncio.wait_for(answer, 30)).split()[1]), sent
        except ConnectionError:
            return None, sent
    finally:
        writer.transport.abort()


async def test_huge_bodies_are_refused_before_they_are_read(
    api_proc: tuple[str, int], db_pool: asyncpg.Pool
) -> None:
    url, pid = api_proc
    port = int(url.rsplit(":", 1)[1])
    key = await api_keys.KeyStore(db_pool).create(f"big-{uuid.uuid4().hex[:6]}")
    json_type = {"Content-Type": "application/json"}
    authed = json_type | {"Authorization": f"Bearer {key}"}
    baseline = proc_status_kib(pid, "VmRSS")
    reset_peak_rss(pid)
    results = await asyncio.gather(
        *[upload(port, 60 * MIB, json_type, chunked=False) for _ in range(6)],  # declared: 413
        *[upload(port, 60 * MIB, json_type, chunked=True) for _ in range(3)],  # unauthenticated
        *[upload(port, 60 * MIB, authed, chunked=True) for _ in range(3)],  # counted: 413
    )
    statuses = [s for s, _ in results]
    assert statuses[:9] == [413] * 6 + [401] * 3, results  # answered before any body was read
    assert set(statuses[9:]) <= {413, None}, results  # read up to the limit, then refused
    growth_mib = (proc_status_kib(pid, "VmHWM") - baseline) / 1024
    print(f"peak RSS growth over 12 x 60 MiB uploads: {growth_mib:.1f} MiB; written: {results}")
    assert growth_mib < 20


async def test_random_methods_and_paths_add_at_most_one_metrics_series(
    api_proc: tuple[str, int],
) -> None:
    """Methods HTTP knows but the API does not route (WebDAV's and others) reach the app and are
    counted as one `OTHER` series; made-up ones are refused by the HTTP parser (httptools) with a
    400 before the app, and count nowhere."""
    url, _ = api_proc
    rng = random.Random(9)

    def junk_method() -> str:
        return "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 12)))

    def known_method() -> str:
        return rng.choice(["PROPFIND", "MKCOL", "LOCK", "PURGE", "REPORT", "SEARCH", "LINK"])

    async with httpx.AsyncClient(base_url=url) as http:
        for path in (lambda: f"/api/v1/{uuid.uuid4().hex}", lambda: "/api/v1/jobs"):
            before = metric_series((await http.get("/metrics")).text, "t2m_http_requests_total")
            codes = {(await http.request(known_method(), path())).status_code for _ in range(200)}
            refused = {(await http.request(junk_method(), path())).status_code for _ in range(50)}
            after = metric_series((await http.get("/metrics")).text, "t2m_http_requests_total")
            new = set(after) - set(before) - {k for k in after if 'route="/metrics"' in k}
            assert len(new) <= 1, new
            counted = [k for k in after if after[k] - before.get(k, 0) == 200]
            assert len(counted) == 1 and 'method="OTHER"' in counted[0]  # all 200 were seen
            assert codes <= {404, 405} and refused == {400}


async def test_a_hundred_event_streams_on_a_finished_job_close_at_once(
    api_settings: Settings, keys: dict, jobs: db.JobStore
) -> None:
    job = await catalog_job(jobs, keys["alice"].user)
    app = create_app(api_settings)
    async with (
        serve(app) as url,
        httpx.AsyncClient(
            base_url=url, headers=keys["alice"], limits=httpx.Limits(max_connections=100)
        ) as http,
    ):
        start = time.monotonic()
        replies = await asyncio.wait_for(
            asyncio.gather(*[http.get(f"/api/v1/videos/jobs/{job}/events") for _ in range(100)]),
            timeout=30,
        )
        elapsed = time.monotonic() - start
        print(f"100 event streams on a finished job: all closed in {elapsed:.2f} s")
        for r in replies:
            assert r.status_code == 200 and r.headers["content-type"].startswith(
                "text/event-stream"
            )
            frames = [f for f in r.text.split("\n\n") if f]
            assert len(frames) == 1 and '"status":"completed"' in frames[0]
        assert elapsed < 10
        assert not app.state.t2m.streams.open


async def test_event_streams_are_capped_and_end_on_disconnect_and_after_their_lifetime(
    api_settings: Settings, keys: dict, jobs: db.JobStore
) -> None:
    job = await catalog_job(jobs, keys["alice"].user, status="running")  # it never ends
    events = f"/api/v1/videos/jobs/{job}/events"
    app = create_app(api_settings, Limits(events_per_user=3, events_poll_s=0.2))
    async with serve(app) as url, httpx.AsyncClient(base_url=url, headers=keys["alice"]) as http:
        async with http.stream("GET", events) as a, http.stream("GET", events) as b:
            async with http.stream("GET", events) as c:
                readers = [s.aiter_text() for s in (a, b, c)]  # kept: dropping one closes it
                for s, reader in zip((a, b, c), readers, strict=True):
                    assert s.status_code == 200
                    assert (await anext(reader)).startswith("event: status")
                over = await http.get(events)
                assert over.status_code == 429 and over.headers["retry-after"]
                assert "at most 3 open event streams" in over.json()["detail"]
                async with http.stream("GET", events, headers=keys["admin"]) as other:
                    assert other.status_code == 200  # the cap is per user
            for _ in range(50):  # c disconnected: its slot comes back
                async with http.stream("GET", events) as d:
                    if d.status_code == 200:
                        break
                await asyncio.sleep(0.1)
            assert d.status_code == 200
        for _ in range(50):
            if not app.state.t2m.streams.open:
                break
            await asyncio.sleep(0.1)
        assert not app.state.t2m.streams.open  # every stream gave its slot back

    short = create_app(api_settings, Limits(events_max_s=2, events_poll_s=0.2))
    async with serve(short) as url, httpx.AsyncClient(base_url=url, headers=keys["alice"]) as http:
        start = time.monotonic()
        ended = await asyncio.wait_for(http.get(events), timeout=10)
        assert 1.5 < time.monotonic() - start < 5  # the stream ran out its lifetime
        assert ended.text.startswith("event: status") and "reconnect" in ended.text
        assert not short.state.t2m.streams.open


async def test_a_body_over_the_limit_is_refused_while_it_is_read(
    api: httpx.AsyncClient, keys: dict
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(64):
            yield b" " * 8192

    headers = keys["alice"] | {"Content-Type": "application/json"}
    r = await api.post(GENERATE, content=chunks(), headers=headers)
    assert r.status_code == 413 and "at most 262144 bytes" in r.json()["detail"]
    big = json.dumps(body(context="x" * 2000)).encode() + b" " * (256 * 1024)
    r = await api.post(GENERATE, content=big, headers=headers)
    assert r.status_code == 413


async def test_unauthenticated_bodies_are_not_parsed(api: httpx.AsyncClient) -> None:
    r = await api.post(
        GENERATE, content=b'{"configuration":', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 401  # not the 422 a parse would give


async def test_cross_site_and_rebinding_requests_are_refused(settings: Settings) -> None:
    dev = settings.model_copy(update={"dev_user": f"dev-{uuid.uuid4().hex[:6]}"})
    async with asgi_client(dev) as http:
        for host in ("attacker.example", "attacker.example:8000", "127.0.0.1.nip.io", ""):
            r = await http.get("/api/v1/jobs", headers={"Host": host})
            assert r.status_code == 401 and "loopback host" in r.json()["detail"], host
        for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "[::1]"):
            assert (await http.get("/api/v1/jobs", headers={"Host": host})).status_code == 200

        same = {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"}
        created = await http.post(GENERATE, json=body(), headers=same)
        assert created.status_code == 201, created.text
        job = created.json()["job_id"]
        cancel = f"/api/v1/jobs/{job}/cancel"
        refused = [
            ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, b"x", 403),
            ({"Origin": "null"}, None, 403),
            ({"Origin": "http://127.0.0.1:9999"}, None, 403),  # another local port: other origin
            ({"Sec-Fetch-Site": "cross-site"}, None, 403),
            ({"Sec-Fetch-Site": "same-site"}, None, 403),
            ({"Content-Type": "text/plain"}, b"{}", 415),
            ({"Content-Type": "application/x-www-form-urlencoded"}, b"a=b", 415),
        ]
        for headers, content, code in refused:
            r = await http.post(cancel, headers=headers, content=content)
            assert r.status_code == code, (headers, r.text)
            assert "cross" in r.text or "JSON" in r.text
        r = await http.post(
            GENERATE, content=json.dumps(body()), headers={"Content-Type": "text/plain"}
        )
        assert r.status_code == 415
        r = await http.delete(f"/api/v1/jobs/{job}", headers={"Host": "attacker.example"})
        assert r.status_code == 401
        status = await http.get(f"/api/v1/videos/jobs/{job}/status")
        assert status.json()["status"] in ("queued", "running")  # nothing above touched it
        assert (await http.post(cancel, headers=same)).status_code == 202


def media_claims(job: str, owner: str, /, **changes: object) -> dict:
    claims = {"sub": job, "owner": owner, "scope": "media", "exp": int(time.time()) + 600}
    return {k: v for k, v in (claims | changes).items() if v is not None}


async def test_media_tokens_are_short_lived_and_bound_to_job_and_owner(
    api: httpx.AsyncClient, keys: dict, jobs: db.JobStore
) -> None:
    alice = keys["alice"].user
    job = await catalog_job(jobs, alice, status="failed")  # no media: a valid token gets 409
    other = await catalog_job(jobs, alice, status="failed")
    auth = api.app.state.t2m.auth  # type: ignore[attr-defined]  # asgi_client sets it
    secret = auth.secret

    async def get(token: str) -> httpx.Response:
        return await api.get(f"/api/v1/videos/jobs/{job}/stream", params={"token": token})

    issued = auth.media_token(job, alice)
    exp = jwt.decode(issued, secret, algorithms=["HS256"])["exp"]
    assert exp <= time.time() + MEDIA_TOKEN_TTL_S <= time.time() + 3600
    assert (await get(issued)).status_code == 409
    assert (await get(jwt.encode(media_claims(job, alice), secret))).status_code == 409
    forged = {
        "no exp": media_claims(job, alice, exp=None),
        "expired": media_claims(job, alice, exp=int(time.time()) - 5),
        "a week long": media_claims(job, alice, exp=int(time.time()) + 7 * 86400),
        "no owner": media_claims(job, alice, owner=None),
        "someone else": media_claims(job, keys["bob"].user),
        "another job": media_claims(other, alice),
        "no job": media_claims(job, alice, sub=None),
        "not media": media_claims(job, alice, scope="api"),
    }
    for case, claims in forged.items():
        r = await get(jwt.encode(claims, secret))
        assert r.status_code == 401, case
        assert "invalid or expired media token" in r.json()["detail"], case
    assert (
        await get(jwt.encode(media_claims(job, alice), "another secret, long enough for HS256"))
    ).status_code == 401


async def test_owner_names_are_validated(
    api: httpx.AsyncClient, db_pool: asyncpg.Pool, keys: dict, postgres_url: str, tmp_path
) -> None:
    store = api_keys.KeyStore(db_pool)
    for name in ("*", "alice*", "", " alice", "a\x00b", "a\nb", "a\x1bb", "a\ud800b", "x" * 201):
        with pytest.raises(ValueError, match="user name"):
            await store.create(name)
    proc = await asyncio.create_subprocess_exec(
        T2M, "keys", "create", "--user", "*",
        env={"T2M_DATABASE_URL": postgres_url, "T2M_DATA_DIR": str(tmp_path), "PATH": "/usr/bin"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 2 and not out and "must not contain '*'" in err.decode()
    # A key stored for such a name before the rule existed no longer authenticates.
    legacy = f"t2m_{uuid.uuid4().hex}"
    await db_pool.execute(
        "INSERT INTO api_keys (user_id, is_admin, key_hash) VALUES ('*', false, $1)",
        api_keys.hash_key(legacy),
    )
    r = await api.get("/api/v1/jobs", headers={"Authorization": f"Bearer {legacy}"})
    assert r.status_code == 401 and "not a valid user name" in r.json()["detail"]
    r = await api.get("/api/v1/jobs", params={"owner": "a\x00b"}, headers=keys["admin"])
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "owner"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("topic", "Pythagoras\ud800", "lone surrogate"),
        ("topic", "Pythagoras\x00", "control character (U+0000)"),
        ("topic", "Pythagoras\nTheorem", "control character (U+000A)"),
        ("context", "a\x00b", "control character (U+0000)"),
        ("context", "a\x07b", "control character (U+0007)"),
        ("voice", "en\x00", "control character (U+0000)"),
        ("model", "offline/\ud83d", "lone surrogate"),
    ],
)
async def test_unstorable_text_is_a_422_naming_the_field(
    api: httpx.AsyncClient, keys: dict, field: str, value: str, message: str
) -> None:
    # json.dumps escapes a lone surrogate as \\ud800, exactly what a hostile client would send
    raw = json.dumps(body(**{field: value}))
    r = await api.post(
        GENERATE, content=raw, headers=keys["alice"] | {"Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["body", "configuration", field] and message in problem["msg"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_a_number_json_cannot_echo_is_a_422_naming_the_field(
    api: httpx.AsyncClient, keys: dict, number: str
) -> None:
    """Python's JSON parser takes NaN and infinities, which the 422 (echoing its input) must
    still be able to send."""
    for field in ("max_cost_usd", "no_such_field"):
        raw = json.dumps(body()).replace('"quality"', f'"{field}": {number}, "quality"')
        r = await api.post(
            GENERATE, content=raw, headers=keys["alice"] | {"Content-Type": "application/json"}
        )
        assert r.status_code == 422, r.text
        (problem,) = r.json()["detail"]
        assert problem["loc"] == ["body", "configuration", field]


async def test_idempotency_key_is_bound_to_its_body_and_dies_with_its_job(
    api: httpx.AsyncClient, keys: dict
) -> None:
    headers = keys["alice"] | {"Idempotency-Key": f"order-{uuid.uuid4().hex[:6]}"}
    first = await api.post(GENERATE, json=body(), headers=headers)
    assert first.status_code == 201
    job = first.json()["job_id"]
    try:
        same = await api.post(GENERATE, json=body("  Circles and squares "), headers=headers)
        assert same.status_code == 201 and same.json()["job_id"] == job  # the same request
        for changed in (body("Triangles"), body() | {"priority": "urgent"}):
            r = await api.post(GENERATE, json=changed, headers=headers)
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
            assert "different request" in r.json()["detail"][0]["msg"]
        assert (await api.post(GENERATE, json=body(), headers=keys["bob"] | {
            "Idempotency-Key": headers["Idempotency-Key"]
        })).status_code == 201  # fmt: skip
    finally:
        assert (await api.delete(f"/api/v1/jobs/{job}", headers=keys["alice"])).status_code == 204
    again = await api.post(GENERATE, json=body(), headers=headers)
    assert again.status_code == 409 and "was deleted" in again.json()["detail"]
    assert (await api.get(f"/api/v1/jobs/{job}", headers=keys["alice"])).status_code == 404
    for h in (keys["bob"],):  # no worker serves these: stop bob's workflow too
        for item in (await api.get("/api/v1/jobs", headers=h)).json()["items"]:
            await api.delete(f"/api/v1/jobs/{item['job_id']}", headers=h)
