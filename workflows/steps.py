"""The workflow's building blocks that are not the workflow itself: fix-round limits, error helpers, and the small records a scene's steps hand each other.

Imported by the workflow through `imports_passed_through`; nothing here does I/O.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

from t2m.errors import ErrorKind
from t2m.vocabulary.job import JobRecord, JobStatus
from t2m.vocabulary.plan import Checkpoint, Narration, SceneMedia, ScenePlan, VideoPlan
from t2m.vocabulary.request import VideoRequest
from t2m.vocabulary.usage import Usage

LAYOUT_FIX_ROUNDS = 2
"""Fix rounds spent on layout findings before a scene is accepted with them listed."""
VISUAL_FIX_ROUNDS = 1
"""Fix rounds spent on a vision reviewer's critique."""


class Billed(Protocol):
    """A model activity's result: whatever it carries, plus the usage it spent."""

    @property
    def usage(self) -> Usage: ...


@dataclass
class Authored:
    """A scene as written: its plan (narration refined by the storyboard), its narration (audio and
    sentence timings), docs and code."""

    scene: ScenePlan
    docs: str | None
    code: str
    narration: Narration
    feedback: str = ""
    """The requester's feedback on the scene's earlier version, when it is regenerated."""


class BudgetReached(ApplicationError):
    """The job's budget is spent: no model may be asked again (`t2m.budget.exhausted`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, type=ErrorKind.BUDGET_REACHED, non_retryable=True)


@dataclass
class Rounds:
    """Fix rounds already spent on layout findings and on critiques, for one scene."""

    layout: int = 0
    visual: int = 0


def is_cancellation(err: BaseException) -> bool:
    return isinstance(err, asyncio.CancelledError | CancelledError) or (
        isinstance(err, ActivityError) and isinstance(err.cause, CancelledError)
    )


def reason_of(err: BaseException) -> str:
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    if isinstance(err, ApplicationError) and err.type in _SAYS_IT_ALL and err.message:
        return err.message  # "model 'x' cannot be used: …", not "ModelError: model 'x' …"
    return str(err) or type(err).__name__


_SAYS_IT_ALL = (ErrorKind.MODEL_ERROR,)
"""Errors whose message is the whole story for a user: no class name before it."""


def is_retryable(err: BaseException) -> bool:
    """Whether running the failed job again can succeed. Not when a step failed with an error
    its activity marked non-retryable (an unusable model, an unknown voice, a plan that will not
    validate): a new run would meet it again at once. A scene that did not render, a timeout or
    transient trouble that outlasted its retries is worth another run. A job that spent its
    budget is not either: a retry would get a whole budget again (resubmit with a larger one)."""
    if isinstance(err, ApplicationError) and err.type == ErrorKind.BUDGET_REACHED:
        return False
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
        if isinstance(err, ApplicationError) and err.non_retryable:
            return False
    return True


def job_record(
    req: VideoRequest,
    status: JobStatus,
    plan: VideoPlan | None,
    done: dict[int, SceneMedia],
    reusable: bool = True,
    seq: int = 0,
) -> JobRecord:
    """The catalog's view of a job: its request, status, and the finished scenes (checkpoint);
    `seq` orders a run's writes, so a late retry of an earlier one never lands over a later."""
    return JobRecord(
        job_id=status.job_id,
        owner=req.owner,
        request=req.model_copy(update={"resume": None}),
        status=status.status,
        progress=status,
        error=status.error,
        artifacts=status.artifacts,
        checkpoint=Checkpoint(plan=plan, scenes=done) if plan else None,
        reusable=reusable,
        seq=seq,
    )
