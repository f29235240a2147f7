"""The shapes of the REST API's answers that the CLI reads: only the fields it reads, strictly
typed, so that a server that answers JSON of another shape (not a t2m API, or not this one) is
told in one line (`Remote.json`), not met as a KeyError half-way through printing.

The CLI keeps using (and, with `--json`, prints) the answer as it came; these models only check it.
Unknown fields are ignored: a newer server may add some.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from t2m.vocabulary.job import JobState


class Answer(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False)


class ActionResult(Answer):
    """cancel, retry: what the job is now."""

    job_id: str
    status: str


class JobCreated(Answer):
    job_id: str


class JobRow(Answer):
    job_id: str
    status: str
    quality: str
    created_at: str
    topic: str


class JobList(Answer):
    items: list[JobRow]
    total: int = Field(ge=0)
    page: int
    page_size: int = Field(ge=1)


class SceneProgress(Answer):
    index: int
    title: str
    state: str
    attempts: int
    error: str | None = None


class StatusProgress(Answer):
    percentage: float
    current_stage: str
    stages_completed: list[str] = []
    scenes: list[SceneProgress] = []


class Budget(Answer):
    max_cost_usd: float
    spent_usd: float


class JobStatus(Answer):
    job_id: str
    status: JobState
    """One the CLI knows: `--follow` shows it as the workflow's `JobStatus`, and waits for one
    that ends the job."""
    progress: StatusProgress
    budget: Budget | None = None
    error: str | None = None
    held: str | None = None
    reused_from: str | None = None
    retryable: bool | None = None


class Regenerated(Answer):
    job_id: str
    status: str
    index: int
    version: int


class VideoMetadata(Answer):
    duration: float


class VideoUrls(Answer):
    metadata: VideoMetadata


class ServerConfig(Answer):
    default_model: str | None = None
