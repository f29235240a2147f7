"""Share links, retry rules and usage over a job's runs, through the real API and catalog (rows
written as the workflow writes them; no renders needed), and the retry classification on the real
Temporal server with faked activities."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.messages import PlanResult, RenderOutcome
from api import service, tenancy
from t2m.catalog.db import JobStore
from t2m.vocabulary.job import JobRecord, JobState, JobStatus
from t2m.vocabulary.plan import Artifacts, Checkpoint, ScenePlan, VideoPlan
from t2m.vocabulary.request import VideoRequest
from t2m.vocabulary.usage import Usage
from tests.conftest import Caller
from tests.fakes import Fakes
from tests.helpers import catalog_request
from tests.test_api import wait_status
from tests.test_workflow_logic import run


async def catalog_job(
    jobs: JobStore,
    owner: str,
    status: JobState,
    *,
    usage: dict[str, Usage] | None = None,
    retryable: bool | None = None,
    artifacts: Artifacts | None = None,
) -> str:
    """A job row as the workflow leaves it when it ends with `status`."""
    job_id = f"video-{uuid.uuid4()}"
    req = catalog_request(owner, "Shared circles")
    await jobs.create(job_id, req, "normal")
    await record(jobs, job_id, req, status, usage or {}, retryable, artifacts)
    return job_id


async def record(
    jobs: JobStore,
    job_id: str,
    req: VideoRequest,
    status: JobState,
    usage: dict[str, Usage],
    retryable: bool | None = None,
    artifacts: Artifacts | None = None,
) -> None:
    error = "model 'x' cannot be used: bad key" if status == "failed" else None
    progress = JobStatus(
        job_id=job_id, status=status, usage=usage, retryable=retryable, error=error
    )
    await jobs.record(
        JobRecord(
            job_id=job_id,
            owner=req.owner,
            request=req,
            status=status,
            progress=progress,
            error=error,
            artifacts=artifacts,
        )
    )


async def completed_with_media(
    api: httpx.AsyncClient, jobs: JobStore, owner: str, tmp: Path, plan: VideoPlan | None = None
) -> str:
    """A completed job whose video, thumbnail and subtitles are in the API's storage."""
    job_id = f"video-{uuid.uuid4()}"
    storage = api.app.state.t2m.storage  # type: ignore[attr-defined]
    files = {"video.mp4": b"\x00\x00\x00\x18ftypmp42" + bytes(5000), "thumb.png": b"\x89PNG..."}
    files["subs.vtt"] = b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello.\n"
    for name, data in files.items():
        src = tmp / name
        src.write_bytes(data)
        storage.put_file(f"jobs/{job_id}/{name}", src)
    artifacts = Artifacts(
        video_key=f"jobs/{job_id}/video.mp4",
        thumbnail_key=f"jobs/{job_id}/thumb.png",
        vtt_key=f"jobs/{job_id}/subs.vtt",
        duration_s=1.0,
        size_bytes=len(files["video.mp4"]),
    )
    req = catalog_request(owner, "Shared circles")
    await jobs.create(job_id, req, "normal")
    await record(jobs, job_id, req, "completed", {}, artifacts=artifacts)
    if plan is not None:  # the scenes a regenerate starts from
        await jobs.record(
            JobRecord(
                job_id=job_id,
                owner=owner,
                request=req,
                status="completed",
                progress=JobStatus(job_id=job_id, status="completed"),
                checkpoint=Checkpoint(plan=plan),
            )
        )
    return job_id


async def test_a_share_link_plays_one_video_without_credentials_until_revoked(
    api: httpx.AsyncClient, keys: dict[str, Caller], jobs: JobStore, tmp_path: Path
) -> None:
    alice, bob = keys["alice"], keys["bob"]
    job = await completed_with_media(api, jobs, alice.user, tmp_path)
    share = f"/api/v1/jobs/{job}/share"
    assert (await api.get(share, headers=alice)).status_code == 404  # none yet
    urls = f"/api/v1/videos/jobs/{job}/video-url"
    assert (await api.get(urls, headers=alice)).json()["share_url"] is None

    made = await api.post(share, headers=alice)
    assert made.status_code == 201, made.text
    link = made.json()
    token = link["token"]
    assert link["url"] == f"/s/{token}" and link["job_id"] == job and len(token) >= 43
    again = await api.post(share, headers=alice)  # one live link per job
    assert again.status_code == 200 and again.json()["token"] == token
    assert (await api.get(share, headers=alice)).json()["token"] == token
    assert (await api.get(urls, headers=alice)).json()["share_url"] == f"/s/{token}"
    for method in ("GET", "POST", "DELETE"):  # another user: as if the job did not exist
        r = await api.request(method, share, headers=bob)
        assert r.status_code == 404 and r.json() == {"detail": f"job {job} not found"}
    assert (await api.post(share)).status_code == 401

    # Without any credentials: the page, what it plays, and the media (with Range).
    page = await api.get(f"/s/{token}")
    assert page.status_code == 200 and "<video" in page.text
    assert page.headers["cache-control"] == "no-store"
    shown = (await api.get(f"/api/v1/shared/{token}")).json()
    assert shown["topic"] == "Shared circles" and shown["duration"] == 1.0
    assert shown["language"] == (await api.get(urls, headers=alice)).json()["language"] == "en"
    video = await api.get(shown["video_url"])
    assert video.status_code == 200 and video.content.startswith(b"\x00\x00\x00\x18ftyp")
    part = await api.get(shown["video_url"], headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and len(part.content) == 10
    assert (await api.get(shown["thumbnail_url"])).headers["content-type"] == "image/png"
    saved = await api.get(shown["download_url"])
    assert saved.content == video.content
    assert saved.headers["content-disposition"] == f'attachment; filename="{job}.mp4"'
    subs = await api.get(shown["subtitles_url"])
    assert subs.text.startswith("WEBVTT") and subs.headers["content-type"].startswith("text/vtt")
    # The share token is no media token: the job's own routes still want credentials.
    assert (await api.get(f"/api/v1/videos/jobs/{job}/stream?token={token}")).status_code == 401
    assert (await api.get(f"/api/v1/jobs/{job}", params={"token": token})).status_code == 401
    unknown = secrets.token_urlsafe(32)
    assert (await api.get(f"/api/v1/shared/{unknown}")).status_code == 404
    assert (await api.get("/api/v1/shared/bad%20token")).status_code == 422

    assert (await api.delete(share, headers=alice)).status_code == 204
    assert (await api.get(f"/s/{token}")).status_code == 404
    for path in ("", "/stream", "/download", "/thumbnail", "/subtitles"):
        assert (await api.get(f"/api/v1/shared/{token}{path}")).status_code == 404, path
    assert (await api.delete(share, headers=alice)).status_code == 404  # nothing left to revoke
    fresh = (await api.post(share, headers=alice)).json()["token"]
    assert fresh != token and (await api.get(f"/s/{token}")).status_code == 404
    assert (await api.get(f"/s/{fresh}")).status_code == 200

    # A deleted job's link finds nothing; an unfinished job cannot be shared.
    assert (await api.delete(f"/api/v1/jobs/{job}", headers=alice)).status_code == 204
    assert (await api.get(f"/api/v1/shared/{fresh}")).status_code == 404
    running = await catalog_job(jobs, alice.user, "failed")
    refused = await api.post(f"/api/v1/jobs/{running}/share", headers=alice)
    assert refused.status_code == 409 and "only a completed video" in refused.text


async def test_a_share_link_plays_the_current_version_while_a_regenerate_runs_and_fails(
    api: httpx.AsyncClient, keys: dict[str, Caller], jobs: JobStore, client: Client, tmp_path: Path
) -> None:
    """A regenerate's run sets the row back to queued, and a failed one leaves it failed: the
    current version still plays and downloads, through its share link too, until revoked."""
    alice = keys["alice"]
    plan = VideoPlan(title="Circles", scenes=[ScenePlan(index=0, title="One", narration="One.")])
    job = await completed_with_media(api, jobs, alice.user, tmp_path, plan)
    token = (await api.post(f"/api/v1/jobs/{job}/share", headers=alice)).json()["token"]
    video = (await api.get(f"/api/v1/shared/{token}/download")).content

    async def still_shared(status: str) -> None:
        assert (await jobs.get(job)).status == status  # type: ignore[union-attr]
        shown = await api.get(f"/api/v1/shared/{token}")
        assert shown.status_code == 200, shown.text
        assert (await api.get(shown.json()["download_url"])).content == video
        assert (await api.get(f"/s/{token}")).status_code == 200
        again = await api.post(f"/api/v1/jobs/{job}/share", headers=alice)
        assert again.status_code == 200 and again.json()["token"] == token, again.text

    regenerate = f"/api/v1/jobs/{job}/scenes/0/regenerate"
    made = await api.post(regenerate, json={"feedback": "bigger"}, headers=alice)
    assert made.status_code == 202 and made.json()["version"] == 2, made.text
    try:  # no worker serves this test's queues: version 2 stays queued
        await still_shared("queued")
    finally:
        await client.get_workflow_handle(job).terminate()
    await record(jobs, job, catalog_request(alice.user, "Shared circles"), "failed", {})
    await still_shared("failed")


async def test_retry_refuses_a_permanent_failure_and_usage_adds_up_over_runs(
    api: httpx.AsyncClient, keys: dict[str, Caller], jobs: JobStore, client: Client
) -> None:
    alice = keys["alice"]
    permanent = await catalog_job(jobs, alice.user, "failed", retryable=False)
    status = (await api.get(f"/api/v1/videos/jobs/{permanent}/status", headers=alice)).json()
    assert status["retryable"] is False
    r = await api.post(f"/api/v1/jobs/{permanent}/retry", headers=alice)
    assert r.status_code == 409 and "edit the request" in r.text

    first_run = {"planning": Usage(calls=1, prompt_tokens=10), "generating_code": Usage(calls=2)}
    job = await catalog_job(jobs, alice.user, "failed", usage=first_run, retryable=True)
    await jobs.pool.execute(  # it ran, and failed, yesterday
        "UPDATE jobs SET created_at = created_at - interval '1 day',"
        " run_started_at = run_started_at - interval '1 day' WHERE id = $1",
        job,
    )
    before = (await api.get(f"/api/v1/videos/jobs/{job}/status", headers=alice)).json()
    assert before["run_started_at"] == before["created_at"]
    assert (await api.post(f"/api/v1/jobs/{job}/retry", headers=alice)).status_code == 202
    try:
        # The retry's run is timed from the retry, not from the job's creation a day ago.
        status = (await api.get(f"/api/v1/videos/jobs/{job}/status", headers=alice)).json()
        started = datetime.fromisoformat(status["run_started_at"])
        assert abs((datetime.now(UTC) - started).total_seconds()) < 60, status
        assert started - datetime.fromisoformat(status["created_at"]) > timedelta(hours=23)
        detail = (await api.get(f"/api/v1/jobs/{job}", headers=alice)).json()
        assert detail["usage"]["total"]["calls"] == 3  # the first run's, nothing of the new yet
        # The second run ends (as its workflow would record it) having made two more calls.
        second_run = {"generating_code": Usage(calls=1), "fixing": Usage(calls=1)}
        await record(jobs, job, catalog_request(alice.user), "failed", second_run, True)
        detail = (await api.get(f"/api/v1/jobs/{job}", headers=alice)).json()
        ended = await wait_status(api, job, alice, {"failed"})  # the status snapshot catches up
        for usage in (detail["usage"], ended["usage"]):
            assert usage["total"]["calls"] == 5 and usage["total"]["prompt_tokens"] == 10
            assert usage["stages"]["generating_code"]["calls"] == 3
            assert usage["stages"]["fixing"]["calls"] == 1
    finally:  # no worker serves this test's queues
        await client.get_workflow_handle(job).terminate()


def hold_the_first_call(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str
) -> tuple[asyncio.Event, asyncio.Event]:
    """The first request through `module.name` waits there, once it is done, until `go` is set:
    it has decided on the row as it was, and another request may overtake it. (`reached`, `go`)"""
    reached, go = asyncio.Event(), asyncio.Event()
    real = getattr(module, name)

    async def held(*args: Any, **kwargs: Any) -> Any:
        answer = await real(*args, **kwargs)
        if not reached.is_set():
            reached.set()
            await go.wait()
        return answer

    monkeypatch.setattr(module, name, held)
    return reached, go


async def test_of_two_retries_at_once_one_runs_the_job_and_the_other_is_a_409(
    api: httpx.AsyncClient,
    keys: dict[str, Caller],
    jobs: JobStore,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A double-click on Retry: both requests see the job failed; the second starts the new run,
    the first is told the job's state (its start used to fail with a 500)."""
    alice = keys["alice"]
    job = await catalog_job(jobs, alice.user, "failed", retryable=True)
    checked, go = hold_the_first_call(monkeypatch, tenancy, "check_quotas")
    url = f"/api/v1/jobs/{job}/retry"
    first = asyncio.create_task(api.post(url, headers=alice))
    await checked.wait()
    try:
        second = await api.post(url, headers=alice)
        assert second.status_code == 202, second.text
        go.set()
        lost = await first
        assert lost.status_code == 409, lost.text
        assert lost.json() == {
            "detail": f"job {job} is queued: another request has just retried it"
        }
    finally:  # no worker serves this test's queues
        go.set()
        await client.get_workflow_handle(job).terminate()


async def test_a_regenerate_that_lost_the_race_leaves_the_row_to_the_winners_run(
    api: httpx.AsyncClient,
    keys: dict[str, Caller],
    jobs: JobStore,
    client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two regenerates of a completed job decided on the same row: the one that lost must not
    requeue it, which let go of the run the winner had started (its catalog writes refused)."""
    alice = keys["alice"]
    plan = VideoPlan(title="Circles", scenes=[ScenePlan(index=0, title="One", narration="One.")])
    job = await completed_with_media(api, jobs, alice.user, tmp_path, plan)
    decided, go = hold_the_first_call(monkeypatch, service, "live_status")
    url = f"/api/v1/jobs/{job}/scenes/0/regenerate"
    first = asyncio.create_task(api.post(url, json={"feedback": "one"}, headers=alice))
    await decided.wait()
    try:
        won = await api.post(url, json={"feedback": "two"}, headers=alice)
        assert won.status_code == 202, won.text
        run_id = (await client.get_workflow_handle(job).describe()).run_id
        start = JobRecord(
            job_id=job,
            owner=alice.user,
            request=catalog_request(alice.user, "Shared circles"),
            status="running",
            progress=JobStatus(job_id=job, status="running"),
            seq=1,
        )
        assert await jobs.record(start, run_id)  # the winner's run takes the row over
        go.set()
        lost = await first
        assert await jobs.record(start.model_copy(update={"seq": 2}), run_id)  # still its row
        assert lost.status_code == 409, lost.text
        assert lost.json()["detail"] == (
            f"job {job} is running: it is already making version 2 of its video;"
            " regenerate again once it has completed"
        )
    finally:
        go.set()
        await client.get_workflow_handle(job).terminate()


class UnusableModel(Fakes):
    """The model cannot be used at all (what `ModelError` means): planning fails at once."""

    def activities(self) -> dict[str, list]:
        acts = super().activities()

        @activity.defn(name="plan_video")
        async def plan_video(req: VideoRequest) -> PlanResult:
            raise ApplicationError("bad key", type="ModelError", non_retryable=True)

        acts["llm"] = [plan_video] + [a for a in acts["llm"] if a.__name__ != "plan_video"]
        return acts


async def test_a_failure_is_retryable_unless_a_step_said_retrying_cannot_help(
    client: Client,
) -> None:
    permanent = await run(client, UnusableModel())
    assert permanent.status == "failed" and permanent.retryable is False
    broken = Fakes(render=lambda r: RenderOutcome(ok=False, error="NameError"))
    scene_failed = await run(client, broken, max_fix_attempts=1)
    assert scene_failed.status == "failed" and scene_failed.retryable is True


async def test_a_share_page_for_a_malformed_token_is_the_not_found_page(
    api: httpx.AsyncClient,
) -> None:
    """Whatever follows /s/ (a NUL byte PostgreSQL refuses, a non-token) is a 404, never a 5xx."""
    for token in ("%00" + "a" * 42, "a" * 42 + "%ff", "a" * 41 + "%0A", "é" * 30):
        page = await api.get(f"/s/{token}")
        assert page.status_code == 404 and 'id="gone"' in page.text, (token, page.status_code)
