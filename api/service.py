"""What the routes do beyond HTTP: start, read and steer jobs through Temporal and the catalog."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.catalog import usage_summary
from api.deps import AppState
from api.schemas import PRIORITY_KEYS, JobStatusResponse, JobSummary, StatusProgress
from t2m.db import Job
from t2m.jobs import job_status, start_video
from workflows.contracts import TERMINAL_STATUSES, Checkpoint, JobStatus, VideoRequest

IDEMPOTENCY_NAMESPACE = uuid.UUID("8f6d3c1e-54a2-4c8e-9d7b-1f2a3b4c5d6e")


def job_id_for(owner: str, idempotency_key: str | None) -> str:
    """A fresh id, or — with an Idempotency-Key — the same id for the same user and key."""
    if idempotency_key is None:
        return f"video-{uuid.uuid4()}"
    return f"video-{uuid.uuid5(IDEMPOTENCY_NAMESPACE, owner + chr(0) + idempotency_key)}"


async def start_job(state: AppState, job: Job, req: VideoRequest, *, retry: bool = False) -> None:
    """Start the job's workflow; a duplicate start (an idempotent replay) is not an error."""
    try:
        await start_video(
            state.client,
            state.settings,
            req,
            job.id,
            priority_key=PRIORITY_KEYS[job.priority],
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
            if retry
            else WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        if retry:
            raise


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
    req = VideoRequest.model_validate(job.request)
    if job.checkpoint:
        req.resume = Checkpoint.model_validate(job.checkpoint)
    return req


async def live_status(state: AppState, job: Job) -> JobStatus:
    """From the workflow while it runs; from the catalog once closed or when nobody answers."""
    stored = JobStatus.model_validate(job.progress) if job.progress else None
    if job.status in TERMINAL_STATUSES and stored is not None:
        return stored
    return await job_status(state.client.get_workflow_handle(job.id), stored)


def progress_of(status: JobStatus) -> StatusProgress:
    return StatusProgress(
        percentage=status.percentage,
        current_stage=status.current_stage,
        stages_completed=status.stages_completed,
        scenes=[s.model_dump() for s in status.scenes],
    )


def estimated_completion(job: Job, status: JobStatus) -> datetime | None:
    """Linear extrapolation of the elapsed time; None until there is something to go on."""
    if status.status in TERMINAL_STATUSES or status.percentage < 10:
        return None
    elapsed = datetime.now(UTC) - job.created_at
    return datetime.now(UTC) + elapsed * ((100 - status.percentage) / status.percentage)


async def status_response(state: AppState, job: Job) -> JobStatusResponse:
    status = await live_status(state, job)
    if status.status in TERMINAL_STATUSES and job.status not in TERMINAL_STATUSES:
        job = await state.jobs.get(job.id) or job  # it ended since the row was read
    return JobStatusResponse(
        job_id=job.id,
        status=status.status,
        progress=progress_of(status),
        error=status.error or job.error,
        usage=usage_summary(status.usage) if status.usage else job.usage,
        created_at=job.created_at,
        updated_at=job.updated_at,
        completed_at=job.completed_at,
    )


def summary(job: Job, thumbnail_url: str | None) -> JobSummary:
    artifacts = job.artifacts or {}
    return JobSummary(
        job_id=job.id,
        owner=job.owner,
        status=job.status,
        priority=job.priority,
        topic=job.request.get("topic", ""),
        quality=job.request.get("quality", ""),
        created_at=job.created_at,
        updated_at=job.updated_at,
        completed_at=job.completed_at,
        error=job.error,
        thumbnail_url=thumbnail_url if artifacts.get("thumbnail_key") else None,
        duration=artifacts.get("duration_s"),
    )
