"""What the routes do beyond HTTP: start, read and steer jobs through Temporal and the catalog."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime

from fastapi import HTTPException, Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api import tenancy
from api.deps import AppState
from api.schemas import (
    Budget,
    GenerateRequest,
    JobStatusResponse,
    JobSummary,
    SceneProgress,
    StatusProgress,
)
from api.status_cache import row_status
from t2m.catalog.db import IdempotencyConflict, Job
from t2m.media.languages import UNDETERMINED, spoken_language
from t2m.requests import InvalidRequest, build_request
from t2m.vocabulary.job import TERMINAL_STATUSES, JobRecord, JobStatus, new_job_id
from t2m.vocabulary.request import PRIORITY_KEYS, VideoRequest
from t2m.vocabulary.usage import Usage, UsageSummary, usage_summary
from workflows.client import job_status_for_decision, start_video


async def create_job(
    state: AppState,
    owner: str,
    body: GenerateRequest,
    idempotency_key: str | None,
    admin: bool = False,
) -> Job:
    """Record the job and start its workflow; an Idempotency-Key replay returns the same job.

    A key stands for one request body (IETF idempotency-key draft): reused with another body it
    is a 422, and the key of a deleted job does not bring it back (409). A non-admin is held to
    the priority ceiling and the quotas (`api.tenancy`; a replay creates nothing, so it is not).
    """
    try:
        req = build_request(state.settings, body.configuration, owner)
    except InvalidRequest as e:
        raise HTTPException(422, problems_detail(e.problems)) from None
    fingerprint = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    job_id = new_job_id(owner, idempotency_key)
    if idempotency_key is None or await state.jobs.get(job_id) is None:
        tenancy.check_priority(state, body.priority, admin)
        if not admin:
            await tenancy.check_quotas(state, owner, creating=True)
    try:
        job = await state.jobs.create(job_id, req, body.priority, idempotency_key, fingerprint)
    except IdempotencyConflict as e:
        if e.deleted:
            raise HTTPException(409, f"{e}; send a new Idempotency-Key") from None
        raise _invalid(["header", "idempotency-key"], f"{e}; send a new key") from None
    try:
        with contextlib.suppress(WorkflowAlreadyStartedError):  # an idempotent replay
            await start_job(state, job, req)
    except Exception as e:
        failed = JobStatus(job_id=job.id, status="failed", error=f"could not start: {e}")
        record = JobRecord(
            job_id=job.id, owner=owner, request=req, status="failed", progress=failed
        )
        await state.jobs.record(record.model_copy(update={"error": failed.error}))
        raise HTTPException(503, "the workflow service is unavailable; try again") from None
    return job


def _invalid(loc: list[str], message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors."""
    return HTTPException(422, [{"loc": loc, "msg": message, "type": "value_error"}])


def problems_detail(problems: list[tuple[str, str]]) -> list[dict]:
    """A request configuration's problems (`t2m.requests`) as a 422's detail, each under its
    field (`style_preferences.language` → loc `[body, configuration, style_preferences,
    language]`)."""
    return [
        {"loc": ["body", "configuration", *field.split(".")], "msg": msg, "type": "value_error"}
        for field, msg in problems
    ]


async def start_job(
    state: AppState,
    job: Job,
    req: VideoRequest,
    policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
) -> None:
    """Start the job's workflow at its priority, under its id; `policy` says whether a closed run
    of that id may be followed by another."""
    await start_video(
        state.client,
        state.settings,
        req,
        job.id,
        priority_key=PRIORITY_KEYS[job.priority],
        id_reuse_policy=policy,
    )


async def run_again(
    state: AppState,
    job: Job,
    req: VideoRequest,
    progress: JobStatus | None,
    policy: WorkflowIDReusePolicy,
    busy: str,
) -> None:
    """A new run of a job's workflow (a retry, a next version): the row starts afresh, its usage
    so far (`progress`) kept as the earlier runs'. The run's budget is what the earlier runs left
    of the job's (409 when nothing is). Only one of requests racing to run the job again does:
    the row is requeued only if nothing wrote it since `job` was read, and a run already started
    is not replaced; the others get a 409 with the job's state and `busy`. When the run cannot
    be started (Temporal unavailable), the row is put back as it was and the answer is a 503."""
    before = usage_of(job, progress) if progress else None
    left = tenancy.remaining_budget(job, before or job.usage_before)
    if left is not None:
        req = req.model_copy(update={"max_cost_usd": left})
    won = await state.jobs.requeue(
        job.id, before or usage_summary({}), job.updated_at, req.regenerate
    )
    if won:
        try:
            await start_job(state, job, req, policy)
        except WorkflowAlreadyStartedError:
            won = False
        except Exception:
            await state.jobs.unqueue(job)  # else it would say queued, with no run, for good
            state.status.forget(job.id)
            unavailable = "the workflow service is unavailable; try again"
            raise HTTPException(503, unavailable, {"Retry-After": "5"}) from None
    state.status.forget(job.id)
    if not won:
        now = await state.jobs.get(job.id)
        raise HTTPException(409, f"job {job.id} is {now.status if now else 'deleted'}: {busy}")


async def wait_closed(state: AppState, job_id: str, timeout_s: float = 10.0) -> bool:
    """Wait (bounded) for the job's current workflow run to close; True once it has."""
    handle = state.client.get_workflow_handle(job_id)
    try:
        await asyncio.wait_for(handle.result(), timeout_s)
    except TimeoutError:
        return False
    except Exception:
        pass  # a failed or cancelled run raises its outcome: closed all the same
    return True


def request_of(job: Job) -> VideoRequest:
    """The job's request, resuming from its checkpoint (the scenes that had finished)."""
    return job.request.model_copy(update={"resume": job.checkpoint})


async def live_status(
    state: AppState, job: Job, *, fresh: bool = False, wait: bool = True
) -> JobStatus:
    """From the workflow while it runs (its shared snapshot, or a query of its own when `fresh`,
    for decisions such as cancel and retry); from the catalog once closed."""
    if job.status in TERMINAL_STATUSES and job.progress is not None:
        return job.progress
    if fresh:
        state.status.forget(job.id)
        return await job_status_for_decision(state.client.get_workflow_handle(job.id), job.progress)
    snapshot = await state.status.get(job.id, job, wait)
    return snapshot.status if snapshot else row_status(job)


_SCENE_ENDED = ("done", "failed")


def progress_of(status: JobStatus) -> StatusProgress:
    """The progress as answered: once a job was cancelled or failed, its unfinished scenes say
    "cancelled" (the workflow stopped them; their last state, e.g. "rendering", is no longer
    true)."""
    stopped = status.status in ("cancelled", "failed")
    scenes = [SceneProgress.model_validate(s.model_dump()) for s in status.scenes]
    for scene in scenes:
        if stopped and scene.state not in _SCENE_ENDED:
            scene.state = "cancelled"
    return StatusProgress(
        percentage=status.percentage,
        current_stage=status.current_stage,
        stages_completed=status.stages_completed,
        scenes=scenes,
    )


def with_previews(
    state: AppState, job: Job, status: JobStatus, progress: StatusProgress
) -> StatusProgress:
    """Each done scene's `preview_url`: its media endpoint with the job's signed token."""
    token = None
    for scene, shown in zip(status.scenes, progress.scenes, strict=True):
        if scene.preview_key and scene.state == "done":
            token = token or state.auth.media_token(job.id, job.owner)
            shown.preview_url = (
                f"/api/v1/videos/jobs/{job.id}/scenes/{scene.index}/preview?token={token}"
            )
    return progress


def estimated_completion(job: Job, status: JobStatus) -> datetime | None:
    """Linear extrapolation of the current run's elapsed time (a retry's from the retry, not
    from the job's creation); None until there is something to go on."""
    if status.status in TERMINAL_STATUSES or status.percentage < 10:
        return None
    elapsed = datetime.now(UTC) - job.run_started_at
    return datetime.now(UTC) + elapsed * ((100 - status.percentage) / status.percentage)


async def status_response(
    state: AppState, job: Job, status: JobStatus | None = None
) -> JobStatusResponse:
    """The job's status as the API answers it (`status`: a snapshot the caller already has)."""
    status = status or await live_status(state, job)
    if status.status in TERMINAL_STATUSES and job.status not in TERMINAL_STATUSES:
        job = await state.jobs.get(job.id) or job  # it ended since the row was read
    return JobStatusResponse(
        job_id=job.id,
        status=status.status,
        progress=with_previews(state, job, status, progress_of(status)),
        error=status.error or job.error,
        reused_from=status.reused_from,
        budget=budget_of(status, job),
        version=job.artifacts.version if job.artifacts else None,
        previous_version=job.previous_artifacts.version if job.previous_artifacts else None,
        usage=usage_of(job, status),
        retryable=status.retryable if status.status == "failed" else None,
        held=status.held if status.status == "running" else None,
        created_at=job.created_at,
        updated_at=job.updated_at,
        completed_at=job.completed_at,
        run_started_at=job.run_started_at,
    )


def usage_of(job: Job, status: JobStatus) -> UsageSummary | None:
    """The job's model usage over all its runs: the earlier runs' (kept at each retry) plus the
    current run's."""
    current = usage_summary(status.usage) if status.usage else job.usage
    if job.usage_before is None:
        return current
    stages = dict(job.usage_before.stages)
    for stage, used in (current.stages if current else {}).items():
        stages[stage] = stages.get(stage, Usage()).plus(used)
    return usage_summary(stages)


def budget_of(status: JobStatus, job: Job | None = None) -> Budget | None:
    """The job's budget and spend over all its runs (a run's own budget is what was left)."""
    budget = (job.request.max_cost_usd if job else None) or status.max_cost_usd
    if budget is None:
        return None
    before = job.usage_before.total.cost_usd if job and job.usage_before else 0.0
    total = max(job.booked_usd if job else 0.0, before + status.spent_usd)
    reached = total >= budget or (
        status.max_cost_usd is not None and status.spent_usd >= status.max_cost_usd
    )
    spent = round(total, 6)  # a sum of floats: 0.10702, not 0.10702000000000001
    return Budget(max_cost_usd=budget, spent_usd=spent, reached=reached)


def language_of(job: Job) -> str | None:
    """What the job's narration and subtitles are in (`en`, `pt-br`); None when nothing says."""
    language = spoken_language(job.request.style_preferences, job.request.voice)
    return None if language == UNDETERMINED else language


def summary(job: Job, thumbnail_url: str | None) -> JobSummary:
    artifacts = job.artifacts
    return JobSummary(
        job_id=job.id,
        owner=job.owner,
        status=job.status,
        priority=job.priority,
        topic=job.request.topic,
        quality=job.request.quality,
        created_at=job.created_at,
        updated_at=job.updated_at,
        completed_at=job.completed_at,
        error=job.error,
        thumbnail_url=thumbnail_url if artifacts and artifacts.thumbnail_key else None,
        duration=artifacts.duration_s if artifacts else None,
    )


class EventStream(StreamingResponse):
    """Server-Sent Events; `on_close` runs however the stream ends (done, timeout, disconnect)."""

    def __init__(
        self, frames: AsyncIterator[str] | Iterable[str], on_close: Callable[[], None] | None = None
    ) -> None:
        super().__init__(
            frames,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.on_close is not None:
                self.on_close()


def status_frame(status: JobStatusResponse) -> str:
    return f"event: status\ndata: {status.model_dump_json()}\n\n"


async def status_events(
    state: AppState, job: Job, first: JobStatusResponse, request: Request
) -> AsyncIterator[str]:
    """`first`, then each change of the job's status, until it ends, the client goes away, the
    job is deleted, the stream's lifetime is up or the server stops (the client reconnects for
    more)."""
    limits = state.limits
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.events_max_s
    last, quiet = first, 0.0
    yield status_frame(first)
    while loop.time() + limits.events_poll_s < deadline:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.stopping.wait(), limits.events_poll_s)
        if state.stopping.is_set():  # the server is stopping: the client reconnects to another
            yield ": the server is restarting; reconnect to follow the job\n\n"
            return
        quiet += limits.events_poll_s
        current = await state.jobs.get(job.id)
        if current is None or await request.is_disconnected():
            return
        status = await status_response(state, current)
        if status != last:
            yield status_frame(status)
            if status.status in TERMINAL_STATUSES:
                return
            last, quiet = status, 0.0
        elif quiet >= limits.events_keepalive_s:
            yield ": keep-alive\n\n"
            quiet = 0.0
    yield ": this stream's lifetime is over; reconnect to follow the job\n\n"
