"""Job management: list, detail, cancel, retry, delete. Users see only their own; admins all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import HTTPException, Query, Response, status
from pydantic import AfterValidator
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from api import service, tenancy
from api.deps import AppState, CurrentUser, OwnedJob, StateDep, protected_router
from api.schemas import ActionResult, JobDetail, JobList, errors
from t2m import keys
from t2m.catalog.db import Job
from t2m.vocabulary.job import TERMINAL_STATUSES, JobState
from t2m.vocabulary.text import user_name

router = protected_router("/api/v1/jobs", "jobs")
ACTION_ERRORS = errors(403, 404, 409, 415, 429)


def _owner_filter(value: str) -> str:
    return value if value == "*" else user_name(value)


def _in_utc(value: datetime | None) -> datetime | None:
    """A time filter in UTC (one without an offset is UTC, not the server's local time), as the
    catalog compares it: one that leaves 0001-9999 once moved to UTC
    (`0001-01-01T00:00:00+01:00`) is the client's mistake, not a database failure."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC)
    except OverflowError:
        raise ValueError("must be between 0001-01-01 and 9999-12-31 in UTC") from None


CreatedAt = Annotated[datetime | None, AfterValidator(_in_utc)]


def _thumb(state: AppState, job: Job) -> str:
    """The thumbnail with a signed media token, so an <img> loads it without headers."""
    token = state.auth.media_token(job.id, job.owner)
    return f"/api/v1/videos/jobs/{job.id}/thumbnail?token={token}"


@router.get("", response_model=JobList, responses=errors(403))
async def list_jobs(
    user: CurrentUser,
    state: StateDep,
    status_: Annotated[JobState | None, Query(alias="status")] = None,
    created_after: CreatedAt = None,
    created_before: CreatedAt = None,
    owner: Annotated[
        str | None,
        Query(max_length=200, description="admins only: another user's jobs, or * for everyone's"),
        AfterValidator(_owner_filter),
    ] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JobList:
    if owner is not None and not user.admin and owner != user.user:
        raise HTTPException(403, "only admins may list other users' jobs")
    who = None if owner == "*" else owner or user.user
    jobs, total = await state.jobs.list(
        who,
        status=status_,
        created_after=created_after,
        created_before=created_before,
        limit=page_size,
        offset=(page - 1) * page_size,
    )
    items = [service.summary(j, _thumb(state, j)) for j in jobs]
    return JobList(items=items, total=total, page=page, page_size=page_size)


@router.get("/{job_id}", response_model=JobDetail, responses=errors(404))
async def get_job(job: OwnedJob, state: StateDep) -> JobDetail:
    live = await service.live_status(state, job)
    return JobDetail(
        **service.summary(job, _thumb(state, job)).model_dump() | {"status": live.status},
        request=job.request,
        progress=service.progress_of(live),
        usage=service.usage_of(job, live),
    )


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionResult,
    responses=ACTION_ERRORS,
)
async def cancel_job(job: OwnedJob, state: StateDep) -> ActionResult:
    live = await service.live_status(state, job, fresh=True)
    if live.status in TERMINAL_STATUSES:
        raise HTTPException(409, f"job {job.id} is already {live.status}")
    await state.client.get_workflow_handle(job.id).cancel()
    return ActionResult(job_id=job.id, status="cancelling")


@router.post(
    "/{job_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ActionResult,
    responses=ACTION_ERRORS,
)
async def retry_job(job: OwnedJob, user: CurrentUser, state: StateDep) -> ActionResult:
    """Run a failed or cancelled job again, reusing every scene that had finished (not when it
    failed with an error a new run would meet again: edit the request and resubmit instead)."""
    live = await service.live_status(state, job, fresh=True)
    if live.status not in ("failed", "cancelled"):
        raise HTTPException(
            409, f"only failed or cancelled jobs can be retried; {job.id} is {live.status}"
        )
    if live.status == "failed" and live.retryable is False:
        raise HTTPException(
            409, f"retrying cannot help: {live.error}; edit the request and submit it anew"
        )
    # A job reports "cancelled" as soon as it is, but records its checkpoint before it closes.
    if not await service.wait_closed(state, job.id):
        raise HTTPException(409, f"job {job.id} is still stopping; retry in a moment")
    job = await state.jobs.get(job.id) or job
    if not user.admin:
        await tenancy.check_quotas(state, job.owner, creating=False)
    policy = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
    busy = "another request has just retried it"
    await service.run_again(state, job, service.request_of(job), job.progress or live, policy, busy)
    return ActionResult(job_id=job.id, status="queued")


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(403, 404, 415),
)
async def delete_job(job: OwnedJob, state: StateDep) -> Response:
    """Drop the job from the lists and remove its artifacts, cancelling it if still running: a
    503 when Temporal cannot be told to (it would run on and spend), before anything is deleted.
    The row is marked deleted before its files go, so a delete cut short never leaves a job that
    identical requests would reuse without its files."""
    if job.status not in TERMINAL_STATUSES:
        try:
            await state.client.get_workflow_handle(job.id).cancel()
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:  # NOT_FOUND: closed, nothing to cancel
                raise
    await state.jobs.delete(job.id)
    state.status.forget(job.id)  # its snapshot would answer until a refresh noticed the delete
    await asyncio.to_thread(state.storage.delete_prefix, keys.job_prefix(job.id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
