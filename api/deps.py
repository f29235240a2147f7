"""Shared state and `Annotated` dependencies for the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Cookie, Depends, Header, HTTPException, Path, Query, Request
from temporalio.client import Client

from api.auth import Authenticator
from t2m.config import Settings
from t2m.db import Job, JobStore, Principal
from t2m.models import JOB_ID_PATTERN
from t2m.storage import LocalStorage


@dataclass
class AppState:
    settings: Settings
    client: Client
    jobs: JobStore
    storage: LocalStorage
    auth: Authenticator


def get_state(request: Request) -> AppState:
    return request.app.state.t2m


StateDep = Annotated[AppState, Depends(get_state)]


async def current_user(
    state: StateDep,
    authorization: Annotated[str | None, Header()] = None,
    session: Annotated[str | None, Cookie(alias="__session")] = None,
) -> Principal:
    return await state.auth.authenticate(authorization, session)


CurrentUser = Annotated[Principal, Depends(current_user)]
JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="a job id: video-<uuid>")]


def _not_found(job_id: str) -> HTTPException:
    return HTTPException(404, f"job {job_id} not found")


async def owned_job(job_id: JobId, user: CurrentUser, state: StateDep) -> Job:
    """The job if the caller owns it (or is an admin); otherwise 404, revealing nothing."""
    job = await state.jobs.get(job_id)
    if job is None or (job.owner != user.user and not user.admin):
        raise _not_found(job_id)
    return job


OwnedJob = Annotated[Job, Depends(owned_job)]


async def media_job(
    job_id: JobId,
    state: StateDep,
    token: Annotated[str | None, Query(description="signed media token from video-url")] = None,
    authorization: Annotated[str | None, Header()] = None,
    session: Annotated[str | None, Cookie(alias="__session")] = None,
) -> Job:
    """Media endpoints accept the caller's credentials or the job's signed media token."""
    if token is not None and state.auth.media_token_valid(token, job_id):
        job = await state.jobs.get(job_id)
        if job is None:
            raise _not_found(job_id)
        return job
    user = await state.auth.authenticate(authorization, session)
    return await owned_job(job_id, user, state)


MediaJob = Annotated[Job, Depends(media_job)]
