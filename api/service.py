"""What the routes do beyond HTTP: start, read and steer jobs through Temporal and the catalog."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.deps import AppState
from api.schemas import JobStatusResponse, JobSummary, SceneProgress, StatusProgress
from t2m.db import Job
from t2m.models import PRIORITY_KEYS, TERMINAL_STATUSES, JobStatus, VideoRequest, usage_summary
from workflows.client import job_status, start_video


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
    """The job's request, resuming from its checkpoint (the scenes that had finished)."""
    return job.request.model_copy(update={"resume": job.checkpoint})


async def live_status(state: AppState, job: Job) -> JobStatus:
    """From the workflow while it runs; from the catalog once closed or when nobody answers."""
    if job.status in TERMINAL_STATUSES and job.progress is not None:
        return job.progress
    return await job_status(state.client.get_workflow_handle(job.id), job.progress)


def progress_of(status: JobStatus) -> StatusProgress:
    return StatusProgress(
        percentage=status.percentage,
        current_stage=status.current_stage,
        stages_completed=status.stages_completed,
        scenes=[SceneProgress.model_validate(s.model_dump()) for s in status.scenes],
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
