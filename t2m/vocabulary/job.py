"""A job: its id, its states and stages, the status the workflow answers and the record the
catalog keeps."""

from __future__ import annotations

import uuid
from typing import Literal, get_args

from pydantic import BaseModel, Field

from t2m.vocabulary.plan import Artifacts, Checkpoint
from t2m.vocabulary.request import VideoRequest
from t2m.vocabulary.usage import Usage

Stage = Literal[
    "queued",
    "planning",
    "narrating",
    "retrieving",
    "generating_code",
    "rendering",
    "composing",
    "uploading",
    "completed",
]
STAGES: tuple[Stage, ...] = get_args(Stage)
"""The one list of progress stages: status, search attribute, CLI, web."""

JobState = Literal["queued", "running", "completed", "failed", "cancelled"]
JOB_STATES: tuple[JobState, ...] = get_args(JobState)
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

SceneState = Literal[
    "pending",
    "storyboarding",
    "narrating",
    "retrieving",
    "generating_code",
    "rendering",
    "reviewing",
    "fixing",
    "done",
    "failed",
]


JOB_ID_PATTERN = r"^video-[0-9a-f-]{36}$"
_IDEMPOTENCY_NAMESPACE = uuid.UUID("8f6d3c1e-54a2-4c8e-9d7b-1f2a3b4c5d6e")


def new_job_id(owner: str | None = None, idempotency_key: str | None = None) -> str:
    """A fresh job id, or — for an owner's Idempotency-Key — the same id for the same key."""
    if owner is None or idempotency_key is None:
        return f"video-{uuid.uuid4()}"
    return f"video-{uuid.uuid5(_IDEMPOTENCY_NAMESPACE, owner + chr(0) + idempotency_key)}"


class SceneStatus(BaseModel):
    index: int
    title: str = ""
    state: SceneState = "pending"
    attempts: int = 0
    error: str | None = None
    layout_issues: list[str] = Field(default_factory=list)
    """What the layout check found: while fixing, in the current render; at the end, in the
    video (when the bounded fix rounds could not clear it)."""
    preview_key: str | None = None  # once done: its render with its narration, to watch early


class JobStatus(BaseModel):
    job_id: str
    status: JobState
    percentage: float = 0.0
    current_stage: str = "queued"
    stages_completed: list[str] = Field(default_factory=list)
    scenes: list[SceneStatus] = Field(default_factory=list)
    error: str | None = None
    artifacts: Artifacts | None = None
    usage: dict[str, Usage] = Field(default_factory=dict)
    """Model usage per stage (planning, storyboarding, generating_code, fixing, reviewing)."""
    reused_from: str | None = None
    """The finished identical job whose video this job reused, if it did."""
    max_cost_usd: float | None = None
    spent_usd: float = 0.0
    """This run's budget for model calls (USD, None: none) and what they have cost so far."""
    retryable: bool | None = None
    """For a failed job: whether running it again can succeed (`workflows.steps.is_retryable`)."""
    held: str | None = None  # why a running job makes no progress (set by the API)


class JobRecord(BaseModel):
    """A state change of a job, written to the job catalog by the `record_job` activity."""

    job_id: str
    owner: str
    request: VideoRequest
    status: JobState
    progress: JobStatus
    error: str | None = None
    artifacts: Artifacts | None = None
    checkpoint: Checkpoint | None = None
    reusable: bool = True  # False once a scene was redone with feedback: not the request alone
    seq: int = Field(default=0, ge=0)  # each write of a run larger than the last (0: unordered)


class VideoResult(BaseModel):
    job_id: str
    artifacts: Artifacts
    scenes: int
