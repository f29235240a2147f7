"""The REST API against real Temporal, PostgreSQL, workers and renders."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RetryConfig

from api import service
from t2m.catalog.db import Job, JobStore
from t2m.config import Settings
from t2m.keys import job_prefix
from t2m.vocabulary.job import JobRecord, JobState, JobStatus
from t2m.vocabulary.plan import Artifacts
from tests.helpers import asgi_client, catalog_request
from tests.scripted import ScriptedLLM, plan_json, scene_code

GENERATE = "/api/v1/videos/generate"


def body(topic: str = "Circles and squares", **cfg) -> dict:
    return {"configuration": {"topic": topic, "model": "scripted/test", "quality": "low"} | cfg}


def quick_scenes(task: str, data: dict) -> str | None:
    if task == "plan_video":
        return plan_json("One", "Two", "Three", duration=2.0)
    if task == "write_scene_code":
        return scene_code(data["class_name"])
    return None


async def wait_status(
    api: httpx.AsyncClient, job: str, headers: dict, want: set[str], timeout=90.0
):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await api.get(f"/api/v1/videos/jobs/{job}/status", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["status"] in want:
            return r.json()
        assert asyncio.get_running_loop().time() < deadline, r.json()
        await asyncio.sleep(0.3)


async def test_generate_follow_and_fetch_the_video(
    api: httpx.AsyncClient, keys: dict, scripted: ScriptedLLM, worker: None, client: Client
) -> None:
    scripted.handler = quick_scenes
    admin = keys["admin"]  # urgent is reserved to admins (tests/test_tenancy.py)
    r = await api.post(GENERATE, json=body() | {"priority": "urgent"}, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    job = created["job_id"]
    assert set(created) == {"job_id", "status", "priority", "progress", "created_at"}
    assert created["priority"] == "urgent" and created["status"] in ("queued", "running")
    assert set(created["progress"]) == {
        "percentage", "current_stage", "stages_completed", "estimated_completion"
    }  # fmt: skip
    desc = await client.get_workflow_handle(job).describe()
    assert desc.raw_description.workflow_execution_info.priority.priority_key == 1

    running = await api.get(f"/api/v1/videos/jobs/{job}/status", headers=admin)
    assert running.status_code == 200
    assert {"job_id", "status", "progress", "created_at", "updated_at", "completed_at"} <= set(
        running.json()
    )
    done = await wait_status(api, job, admin, {"completed"})
    assert done["progress"]["percentage"] == 100 and done["completed_at"]
    assert [s["state"] for s in done["progress"]["scenes"]] == ["done"] * 3
    assert done["usage"]["total"]["calls"] == 1 + 3 + 3  # plan, storyboards, code

    events = await api.get(f"/api/v1/videos/jobs/{job}/events", headers=admin)
    assert events.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in events.text.split("\n\n") if f.startswith("event: status")]
    assert frames and '"status":"completed"' in frames[-1]  # the stream ends with the outcome

    r = await api.get(f"/api/v1/videos/jobs/{job}/video-url", headers=admin)
    assert r.status_code == 200, r.text
    urls = r.json()
    meta = urls["metadata"]
    assert meta["format"] == "mp4" and meta["quality"] == "low" and meta["file_size"] > 10_000
    assert meta["duration"] > 3

    # The signed URLs work without credentials (a <video> element cannot send headers).
    full = await api.get(urls["video_url"])
    assert full.status_code == 200 and full.headers["accept-ranges"] == "bytes"
    size = len(full.content)
    assert size == meta["file_size"]
    assert (await api.get(urls["thumbnail_url"])).headers["content-type"] == "image/png"
    vtt = await api.get(urls["subtitles_url"])
    assert vtt.text.startswith("WEBVTT") and "This is One." in vtt.text
    srt = await api.get(f"/api/v1/videos/jobs/{job}/subtitles?format=srt", headers=admin)
    assert srt.status_code == 200 and srt.text.startswith("1\n00:00:00,000 --> ")
    dl = await api.get(urls["download_url"])
    assert dl.headers["content-disposition"].startswith("attachment") and len(dl.content) == size
    assert (await api.get(f"/api/v1/videos/jobs/{job}/stream?token=forged")).status_code == 401

    stream = f"/api/v1/videos/jobs/{job}/stream"
    for rng, start, end in (
        ("bytes=0-99", 0, 99),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=-500", size - 500, size - 1),
    ):
        part = await api.get(stream, headers=admin | {"Range": rng})
        assert part.status_code == 206, rng
        assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert part.content == full.content[start : end + 1]
    unsatisfiable = await api.get(stream, headers=admin | {"Range": f"bytes={size + 10}-"})
    assert unsatisfiable.status_code == 416

    listed = (await api.get("/api/v1/jobs", headers=admin)).json()
    assert [i["job_id"] for i in listed["items"]] == [job] and listed["total"] == 1
    detail = (await api.get(f"/api/v1/jobs/{job}", headers=admin)).json()
    assert detail["request"]["topic"] == "Circles and squares" and detail["status"] == "completed"
    again = await api.post(f"/api/v1/jobs/{job}/cancel", headers=admin)
    assert again.status_code == 409 and "already completed" in again.text

    assert (await api.delete(f"/api/v1/jobs/{job}", headers=admin)).status_code == 204
    assert (await api.get(f"/api/v1/jobs/{job}", headers=admin)).status_code == 404
    assert (await api.get("/api/v1/jobs", headers=admin)).json()["total"] == 0
    assert (await api.get(urls["video_url"])).status_code == 404


async def test_idempotency_key_returns_the_same_job(
    api: httpx.AsyncClient, keys: dict, client: Client, api_settings: Settings
) -> None:
    headers = keys["alice"] | {"Idempotency-Key": "order-42"}
    first = await api.post(GENERATE, json=body(), headers=headers)
    second = await api.post(GENERATE, json=body(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["job_id"] == second.json()["job_id"]
    other_user = await api.post(
        GENERATE, json=body(), headers=keys["bob"] | {"Idempotency-Key": "order-42"}
    )
    assert other_user.json()["job_id"] != first.json()["job_id"]
    query = f'WorkflowId = "{first.json()["job_id"]}"'
    runs = [w async for w in client.list_workflows(query)]
    assert len(runs) == 1
    listed = (await api.get("/api/v1/jobs", headers=keys["alice"])).json()
    assert listed["total"] == 1
    for h in (keys["alice"], keys["bob"]):  # no worker serves this test: stop the workflows
        for item in (await api.get("/api/v1/jobs", headers=h)).json()["items"]:
            await api.post(f"/api/v1/jobs/{item['job_id']}/cancel", headers=h)


async def test_status_answers_without_a_worker(api: httpx.AsyncClient, keys: dict) -> None:
    """No worker polls this test's queues: status must come back (bounded), not hang."""
    job = (await api.post(GENERATE, json=body(), headers=keys["alice"])).json()["job_id"]
    r = await asyncio.wait_for(
        api.get(f"/api/v1/videos/jobs/{job}/status", headers=keys["alice"]), timeout=15
    )
    assert r.status_code == 200 and r.json()["status"] in ("queued", "running")
    conflict = await api.get(f"/api/v1/videos/jobs/{job}/video-url", headers=keys["alice"])
    assert conflict.status_code == 409
    assert conflict.json()["detail"]["status"] in ("queued", "running")
    assert "percentage" in conflict.json()["detail"]["progress"]
    assert (await api.post(f"/api/v1/jobs/{job}/cancel", headers=keys["alice"])).status_code == 202


# The model's answers change between the runs here, so its response cache must not hide that.
@pytest.mark.parametrize("settings", [{"llm_cache": False}], indirect=True)
async def test_cancel_then_retry_reuses_finished_scenes(
    api: httpx.AsyncClient, keys: dict, scripted: ScriptedLLM, worker: None
) -> None:
    broken = {"on": True}

    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("Quick", "Stuck", "Quick too", duration=2.0)
        if task in ("write_scene_code", "fix_scene_code"):
            stuck = data["scene"]["index"] == 1 and broken["on"]
            return scene_code(data["class_name"], "self.wait(900)" if stuck else None)
        return None

    scripted.handler = handler
    alice = keys["alice"]
    job = (await api.post(GENERATE, json=body(), headers=alice)).json()["job_id"]
    deadline = asyncio.get_running_loop().time() + 60
    while True:  # scenes 1 and 3 finish; scene 2 renders "forever"
        scenes = (await wait_status(api, job, alice, {"running"}))["progress"]["scenes"]
        if [s["state"] for s in scenes] == ["done", "rendering", "done"]:
            break
        assert asyncio.get_running_loop().time() < deadline, scenes
        await asyncio.sleep(0.3)
    assert (await api.post(f"/api/v1/jobs/{job}/retry", headers=alice)).status_code == 409
    assert (await api.post(f"/api/v1/jobs/{job}/cancel", headers=alice)).status_code == 202
    cancelled = await wait_status(api, job, alice, {"cancelled"})
    assert cancelled["status"] == "cancelled"

    broken["on"] = False
    asked_before = len(scripted.prompts)
    r = await api.post(f"/api/v1/jobs/{job}/retry", headers=alice)
    assert r.status_code == 202 and r.json() == {"job_id": job, "status": "queued"}
    done = await wait_status(api, job, alice, {"completed"})
    assert [s["state"] for s in done["progress"]["scenes"]] == ["done"] * 3
    asked_after = [
        (t, d.get("scene", {}).get("index")) for t, d, _ in scripted.prompts[asked_before:]
    ]
    # No new plan; finished scenes are not redone: only scene 2 is storyboarded and written again.
    assert asked_after == [("storyboard_scene", 1), ("write_scene_code", 1)]
    assert (await api.get(f"/api/v1/videos/jobs/{job}/video-url", headers=alice)).status_code == 200


async def test_other_users_jobs_are_invisible(api: httpx.AsyncClient, keys: dict) -> None:
    job = (await api.post(GENERATE, json=body(), headers=keys["alice"])).json()["job_id"]
    base = f"/api/v1/videos/jobs/{job}"
    calls = [
        ("GET", f"{base}/status"), ("GET", f"{base}/events"), ("GET", f"{base}/video-url"),
        ("GET", f"{base}/stream"), ("GET", f"{base}/download"), ("GET", f"{base}/thumbnail"),
        ("GET", f"{base}/subtitles"), ("GET", f"/api/v1/jobs/{job}"),
        ("POST", f"/api/v1/jobs/{job}/cancel"), ("POST", f"/api/v1/jobs/{job}/retry"),
        ("DELETE", f"/api/v1/jobs/{job}"),
    ]  # fmt: skip
    for method, url in calls:
        r = await api.request(method, url, headers=keys["bob"])
        assert r.status_code == 404, (method, url, r.status_code)
        assert r.json() == {
            "detail": f"job {job} not found"
        }  # the same as a job that does not exist
    assert (await api.get("/api/v1/jobs", headers=keys["bob"])).json()["total"] == 0
    r = await api.get("/api/v1/jobs", params={"owner": "x"}, headers=keys["bob"])
    assert r.status_code == 403
    # An admin sees and steers anyone's job.
    assert (await api.get(f"/api/v1/jobs/{job}", headers=keys["admin"])).status_code == 200
    owner = (await api.get(f"/api/v1/jobs/{job}", headers=keys["alice"])).json()["owner"]
    listed = await api.get("/api/v1/jobs", params={"owner": owner}, headers=keys["admin"])
    assert [i["job_id"] for i in listed.json()["items"]] == [job]
    everyone = await api.get("/api/v1/jobs", params={"owner": "*"}, headers=keys["admin"])
    assert job in [i["job_id"] for i in everyone.json()["items"]]
    own = await api.get("/api/v1/jobs", headers=keys["admin"])  # by default: the caller's own
    assert own.json()["total"] == 0
    assert (await api.post(f"/api/v1/jobs/{job}/cancel", headers=keys["admin"])).status_code == 202


async def test_list_filters_and_pages(api: httpx.AsyncClient, keys: dict, jobs) -> None:
    alice = keys["alice"]
    assert (await api.get("/api/v1/jobs", headers=alice)).json()["total"] == 0
    for i, status in enumerate(["completed", "failed", "completed", "cancelled", "completed"]):
        row = await jobs.create(
            f"video-{uuid.uuid4()}", catalog_request(alice.user, f"topic {i}"), "normal"
        )
        await jobs.record(
            JobRecord(
                job_id=row.id,
                owner=row.owner,
                request=row.request,
                status=status,
                progress=JobStatus(job_id=row.id, status=status),
            )
        )
    page1 = (await api.get("/api/v1/jobs?page_size=2", headers=alice)).json()
    page3 = (await api.get("/api/v1/jobs?page_size=2&page=3", headers=alice)).json()
    assert page1["total"] == 5 and len(page1["items"]) == 2 and len(page3["items"]) == 1
    done = (await api.get("/api/v1/jobs?status=completed", headers=alice)).json()
    assert done["total"] == 3 and {i["status"] for i in done["items"]} == {"completed"}
    later = "2999-01-01T00:00:00Z"
    assert (await api.get(f"/api/v1/jobs?created_after={later}", headers=alice)).json()[
        "total"
    ] == 0
    assert (await api.get(f"/api/v1/jobs?created_before={later}", headers=alice)).json()[
        "total"
    ] == 5


async def test_time_filters_are_utc_and_out_of_range_ones_are_a_422(
    api: httpx.AsyncClient, keys: dict, jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A time without an offset is UTC, not whatever zone the API server runs in; an offset that
    takes a date out of 0001-9999 in UTC is the client's mistake (it was a 503 "database
    unavailable", which clients retry for ever)."""
    alice = keys["alice"]
    row = await jobs.create(f"video-{uuid.uuid4()}", catalog_request(alice.user), "normal")
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # the server's zone, 9 h ahead of UTC
    time.tzset()
    try:
        created = row.created_at.astimezone(UTC).replace(tzinfo=None)
        after = (created - timedelta(minutes=1)).isoformat()
        before = (created + timedelta(minutes=1)).isoformat()
        listed = await api.get(
            f"/api/v1/jobs?created_after={after}&created_before={before}", headers=alice
        )
        earliest = await api.get("/api/v1/jobs?created_after=0001-01-01T00:00:00", headers=alice)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert [j["job_id"] for j in listed.json()["items"]] == [row.id], listed.text
    assert earliest.status_code == 200 and earliest.json()["total"] == 1, earliest.text

    for field, value in (
        ("created_after", "0001-01-01T00:00:00%2B01:00"),
        ("created_before", "9999-12-31T23:59:59-01:00"),
    ):
        r = await api.get(f"/api/v1/jobs?{field}={value}", headers=alice)
        assert r.status_code == 422 and "Retry-After" not in r.headers, r.text
        [problem] = r.json()["detail"]
        assert problem["loc"] == ["query", field]
        assert problem["msg"] == "must be between 0001-01-01 and 9999-12-31 in UTC"


async def test_health_names_each_component(api: httpx.AsyncClient, settings: Settings) -> None:
    h = await api.get("/health")  # no worker serves this test's queues
    assert h.status_code == 503 and h.json()["status"] == "degraded"
    assert h.json()["workers_render"] == f"error: no worker polls {settings.queue('render')}"
    assert h.json()["temporal"] == h.json()["database"] == h.json()["storage"] == "ok"


async def test_health_and_metrics(api: httpx.AsyncClient, keys: dict, worker: None) -> None:
    for _ in range(100):  # the workers' first polls reach the server within moments
        h = await api.get("/health")
        if h.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert h.status_code == 200
    assert h.json() == {
        "status": "ok",
        "temporal": "ok",
        "database": "ok",
        "storage": "ok",
        "workers_video": "ok",
        "workers_llm": "ok",
        "workers_render": "ok",
        "workers_media": "ok",
        "workflow_tasks": "ok",
    }
    await api.get("/api/v1/jobs", headers=keys["alice"])
    m = await api.get("/metrics")
    assert m.status_code == 200
    assert 't2m_http_requests_total{method="GET",route="/api/v1/jobs",status="200"}' in m.text
    assert "t2m_jobs_held 0.0" in m.text


async def test_a_backing_service_outage_is_a_503_not_a_500(api_settings: Settings, keys) -> None:
    async with asgi_client(api_settings) as http:
        await http.app.state.t2m.jobs.pool.close()  # type: ignore[attr-defined]  # the database goes away
        r = await http.get("/api/v1/jobs", headers=keys["alice"])
        assert r.status_code == 503 and "database is unavailable" in r.json()["detail"]


async def test_the_form_offers_the_default_model_even_when_the_allow_list_omits_it(
    settings: Settings,
) -> None:
    """The default model is always allowed (`t2m.requests.allowed_models`): the form must offer it
    too, or a deployment listing only other models hides the one its requests get by default."""
    configured = settings.model_copy(
        update={"default_model": "offline/templates", "allowed_models": ["scripted/test"]}
    )
    async with asgi_client(configured) as http:
        offered = (await http.get("/api/v1/config")).json()
    assert offered["models"] == ["offline/templates", "scripted/test"]
    assert offered["default_model"] == "offline/templates"
    assert offered["ignores_feedback"] == ["offline/templates"]


@contextlib.asynccontextmanager
async def temporal_away(api: httpx.AsyncClient) -> AsyncIterator[None]:
    """The API's Temporal client, connected through a proxy that then goes away: its calls fail
    with UNAVAILABLE, as when the server is down."""
    state = api.app.state.t2m  # type: ignore[attr-defined]
    real = state.client
    host, port = real.service_client.config.target_host.rsplit(":", 1)
    open_ends: list[asyncio.StreamWriter] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        open_ends.extend((writer, up_writer))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    proxy = await asyncio.start_server(forward, "127.0.0.1", 0)
    state.client = await Client.connect(
        f"127.0.0.1:{proxy.sockets[0].getsockname()[1]}",
        namespace=real.namespace,
        data_converter=real.data_converter,
        retry_config=RetryConfig(max_retries=0),
    )
    proxy.close()
    for end in open_ends:
        end.close()
    try:
        yield
    finally:
        state.client = real


async def ended(
    jobs: JobStore,
    owner: str,
    status: JobState,
    error: str | None = None,
    artifacts: Artifacts | None = None,
) -> Job:
    """A row of a job whose run ended with `status`."""
    row = await jobs.create(f"video-{uuid.uuid4()}", catalog_request(owner), "normal")
    progress = JobStatus(job_id=row.id, status=status, percentage=60.0, error=error)
    rec = JobRecord(job_id=row.id, owner=owner, request=row.request, status=status,
                    progress=progress, error=error, artifacts=artifacts)  # fmt: skip
    assert await jobs.record(rec)
    return await jobs.get(row.id)  # type: ignore[return-value]


async def test_a_retry_whose_run_cannot_start_leaves_the_job_as_it_was(
    api: httpx.AsyncClient, keys: dict, jobs: JobStore
) -> None:
    """Temporal unavailable when a retry starts its run: a 503 with Retry-After, and the job
    still failed, to be retried later. It was left queued with no run, for good (the reconciler
    could not repair it either), counted against its owner's active jobs."""
    alice = keys["alice"]
    before = await ended(jobs, alice.user, "failed", error="a render host died")
    async with temporal_away(api):
        r = await api.post(f"/api/v1/jobs/{before.id}/retry", headers=alice)
    assert r.status_code == 503 and r.headers["Retry-After"] == "5", r.text
    after = await jobs.get(before.id)
    assert after is not None and (after.status, after.error) == ("failed", "a render host died")
    assert after.progress == before.progress and after.usage_before == before.usage_before
    assert after.run_started_at == before.run_started_at  # no run started: none is timed


async def test_deleting_a_job_temporal_cannot_cancel_deletes_nothing(
    api: httpx.AsyncClient, keys: dict, jobs: JobStore, tmp_path: Path
) -> None:
    """A running job's workflow must be cancelled before its row and files go: with Temporal
    away the cancel was skipped, the job deleted, and its run went on spending and writing."""
    alice = keys["alice"]
    row = await jobs.create(f"video-{uuid.uuid4()}", catalog_request(alice.user), "normal")
    storage = api.app.state.t2m.storage  # type: ignore[attr-defined]
    (tmp_path / "v.mp4").write_bytes(b"video")
    key = f"{job_prefix(row.id)}/v1/video.mp4"
    storage.put_file(key, tmp_path / "v.mp4")
    async with temporal_away(api):
        r = await api.delete(f"/api/v1/jobs/{row.id}", headers=alice)
    assert r.status_code == 503 and r.headers["Retry-After"], r.text
    assert await jobs.get(row.id) is not None and storage.exists(key)
    # Temporal back: a workflow that is gone (this one never started) has nothing to cancel.
    assert (await api.delete(f"/api/v1/jobs/{row.id}", headers=alice)).status_code == 204
    assert await jobs.get(row.id) is None and not storage.exists(key)


async def test_a_delete_cut_short_leaves_no_job_to_reuse_without_its_files(
    api: httpx.AsyncClient, keys: dict, jobs: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files went first: a delete cut short there left a finished job that every identical
    request reused, and whose copy then failed."""
    alice = keys["alice"]
    video = Artifacts(video_key="jobs/x/v1/video.mp4", duration_s=2.0)
    row = await ended(jobs, alice.user, "completed", artifacts=video)
    assert await jobs.finished_like(row.request) is not None
    state = api.app.state.t2m  # type: ignore[attr-defined]

    def cut_short(prefix: str) -> None:
        raise ConnectionResetError("storage went away mid-delete")

    monkeypatch.setattr(state.storage, "delete_prefix", cut_short)
    with pytest.raises(ConnectionResetError):
        await api.delete(f"/api/v1/jobs/{row.id}", headers=alice)
    assert await jobs.get(row.id) is None and await jobs.finished_like(row.request) is None


def test_the_estimated_completion_extrapolates_the_current_run_not_the_jobs_life() -> None:
    """A job made yesterday and retried a minute ago, half done: about a minute left."""
    now = datetime.now(UTC)
    req = catalog_request("alice")
    job = Job("video-x", "alice", req, "normal", "running", None, None, None, None, None,
              now - timedelta(days=1), now, None, now - timedelta(seconds=60))  # fmt: skip
    done_at = service.estimated_completion(
        job, JobStatus(job_id=job.id, status="running", percentage=50)
    )
    assert done_at is not None and timedelta(seconds=50) < done_at - now < timedelta(seconds=70)
