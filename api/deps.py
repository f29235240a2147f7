"""Shared state and `Annotated` dependencies for the routes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, Security
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from temporalio.client import Client

from api.auth import STATE_CHANGING, Authenticator
from api.limits import Limits, StreamSlots
from api.schemas import errors
from api.status_cache import StatusCache
from t2m.catalog.api_keys import Principal
from t2m.catalog.db import Job, JobStore
from t2m.catalog.storage import Storage
from t2m.config import Settings
from t2m.vocabulary.job import JOB_ID_PATTERN

PRINCIPAL = "t2m.principal"
"""Scope key of the caller authenticated before the body was read."""

BEARER = HTTPBearer(
    auto_error=False,
    description="an API key (`t2m keys create`) or a JWT from the configured identity provider",
)


@dataclass
class AppState:
    settings: Settings
    client: Client
    jobs: JobStore
    storage: Storage
    auth: Authenticator
    limits: Limits
    streams: StreamSlots
    status: StatusCache
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the server is told to stop: open event streams end instead of holding it up."""


async def get_state(request: Request) -> AppState:
    return request.app.state.t2m  # async: FastAPI would run a plain function in a thread


StateDep = Annotated[AppState, Depends(get_state)]


class AuthenticatedRoute(APIRoute):
    """Authenticates state-changing requests before FastAPI reads (and parses) their body.

    FastAPI reads the body before it resolves any dependency, so an unauthenticated client could
    otherwise make the API buffer and parse whatever it sends. Errors raised here go through the
    app's exception handlers like any route's.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticate_first(request: Request) -> Response:
            if request.method in STATE_CHANGING:
                state = await get_state(request)
                request.scope[PRINCIPAL] = await state.auth.authenticate(request)
            return await handler(request)

        return authenticate_first


async def current_user(request: Request, state: StateDep) -> Principal:
    principal: Principal | None = request.scope.get(PRINCIPAL)
    return principal if principal is not None else await state.auth.authenticate(request)


CurrentUser = Annotated[Principal, Depends(current_user)]
JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="a job id: video-<uuid>")]


def _not_found(job_id: str) -> HTTPException:
    return HTTPException(404, f"job {job_id} not found")


def visible(job: Job | None, user: Principal, job_id: str) -> Job:
    """The job if the caller owns it (or is an admin); otherwise 404, revealing nothing."""
    if job is None or (job.owner != user.user and not user.admin):
        raise _not_found(job_id)
    return job


async def owned_job(job_id: JobId, user: CurrentUser, state: StateDep) -> Job:
    return visible(await state.jobs.get(job_id), user, job_id)


OwnedJob = Annotated[Job, Depends(owned_job)]


async def media_job(
    job_id: JobId,
    state: StateDep,
    request: Request,
    token: Annotated[
        str | None,
        Query(max_length=2000, description="signed media token from video-url (30 minutes)"),
    ] = None,
) -> Job:
    """Media endpoints accept the caller's credentials or the job's signed media token."""
    owner = state.auth.media_token_owner(token, job_id) if token is not None else None
    if owner is not None:
        job = await state.jobs.get(job_id)
        if job is None:
            raise _not_found(job_id)
        if job.owner == owner:
            return job
    try:
        user = await current_user(request, state)
    except HTTPException as e:
        if token is not None and e.status_code == 401:
            e.detail = "invalid or expired media token; get fresh URLs from video-url"
        raise
    return await owned_job(job_id, user, state)


MediaJob = Annotated[Job, Depends(media_job)]


def protected_router(prefix: str, tag: str) -> APIRouter:
    """A router whose every route authenticates (before the body is read) and documents the
    errors any protected route can give."""
    return APIRouter(
        prefix=prefix,
        tags=[tag],
        route_class=AuthenticatedRoute,
        dependencies=[Security(BEARER)],
        responses=errors(401, 413, 503),
    )
