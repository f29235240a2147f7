"""Regenerate one scene of a job, with the requester's feedback.

Running job: the workflow's `regenerate_scene` Update, whose real outcome decides the answer (only
an accepted request is a 202; no such scene is a 422; a scene already being redone, a version
being made, scenes already final or too many redos a 409). Completed job: a new run
of the same workflow id whose request carries the previous result (the checkpoint of its scenes,
so only that scene is made again, and the artifacts it replaces) — the next version of the video;
the one it replaces stays downloadable (video-url's `previous`) until a later version replaces it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import HTTPException, Path, status
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from api import service
from api.deps import AppState, OwnedJob, StateDep, protected_router
from api.schemas import RegenerateRequest, RegenerateResult, errors
from t2m.catalog.db import Job
from t2m.errors import HTTP_STATUS, ErrorKind, http_status
from t2m.vocabulary.request import Regeneration
from workflows.video import VideoWorkflow

router = protected_router("/api/v1/jobs", "jobs")
ACCEPT_TIMEOUT = timedelta(seconds=10)
"""How long a running job's worker has to accept (or refuse) the update."""
MAX_VERSIONS = 20
"""Versions a job may have: each costs a budget of model calls and keeps its files until the job
is deleted, so regenerating cannot go on without bound."""
SceneIndex = Annotated[int, Path(ge=0, le=99, description="the scene's index, from 0")]


def _bad_index(message: str) -> HTTPException:
    return HTTPException(422, [{"loc": ["path", "index"], "msg": message, "type": "value_error"}])


@router.post(
    "/{job_id}/scenes/{index}/regenerate",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RegenerateResult,
    responses=errors(400, 403, 404, 409, 415, 503),
)
async def regenerate_scene(
    job: OwnedJob, index: SceneIndex, body: RegenerateRequest, state: StateDep
) -> RegenerateResult:
    """Make scene `index` again with `feedback` in its code and fix prompts; every other scene
    is reused (nothing else is rendered or paid for again)."""
    live = await service.live_status(state, job, fresh=True)
    if live.status in ("queued", "running"):
        return await _while_running(state, job, index, body.feedback)
    if live.status != "completed":
        raise HTTPException(
            409,
            f"job {job.id} is {live.status}: only a running or completed job's scenes can be"
            " regenerated (retry it first)",
        )
    return await _next_version(state, job, index, body.feedback)


async def _while_running(state: AppState, job: Job, index: int, feedback: str) -> RegenerateResult:
    handle = state.client.get_workflow_handle(job.id)
    try:  # the update answers as soon as the workflow accepted or refused it
        await handle.execute_update(
            VideoWorkflow.regenerate_scene, args=[index, feedback], rpc_timeout=ACCEPT_TIMEOUT
        )
    except WorkflowUpdateFailedError as e:  # the validator refused it
        cause = e.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        kind = cause.type if isinstance(cause, ApplicationError) else None
        if http_status(kind) == HTTP_STATUS[ErrorKind.NO_SUCH_SCENE]:
            raise _bad_index(message) from None
        raise HTTPException(http_status(kind), message) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise HTTPException(503, "no worker took the request in time; try again") from None
    except RPCError as e:  # the run closed in the meantime
        raise HTTPException(409, f"job {job.id} has just ended; ask again: {e.message}") from None
    state.status.forget(job.id)
    again = job.request.regenerate
    version = again.previous.version + 1 if again else 1
    return RegenerateResult(job_id=job.id, status="regenerating", index=index, version=version)


async def _next_version(state: AppState, job: Job, index: int, feedback: str) -> RegenerateResult:
    if job.checkpoint is None or job.artifacts is None:
        raise HTTPException(
            409, f"job {job.id} copied an identical job's video and has no scenes of its own"
        )
    count = len(job.checkpoint.plan.scenes)
    if index >= count:
        raise _bad_index(
            f"scene index {index} does not exist; this video has {count} scenes (0-{count - 1})"
        )
    if job.artifacts.version >= MAX_VERSIONS:
        raise HTTPException(
            409,
            f"job {job.id} has {MAX_VERSIONS} versions, the most a job may have; make a new job",
        )
    again = Regeneration(index=index, feedback=feedback, previous=job.artifacts)
    req = job.request.model_copy(update={"resume": job.checkpoint, "regenerate": again})
    busy = (
        f"it is already making version {job.artifacts.version + 1} of its video;"
        " regenerate again once it has completed"
    )
    policy = WorkflowIDReusePolicy.ALLOW_DUPLICATE
    await service.run_again(state, job, req, job.progress, policy, busy)  # like a retry
    return RegenerateResult(
        job_id=job.id, status="queued", index=index, version=job.artifacts.version + 1
    )
