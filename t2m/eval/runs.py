"""What travels between the eval workflow and its activities: the topics' requests, each
video's outcome and the eval's progress."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import (
    BaseModel,
    Field,
)

from t2m.eval.topics import MAX_TOPICS, EvalTopic
from t2m.vocabulary.job import JobState
from t2m.vocabulary.plan import Artifacts
from t2m.vocabulary.request import VideoRequest

if TYPE_CHECKING:
    pass


class EvalItem(BaseModel):
    """A topic and the video request made from it (by `t2m.requests.build_request`)."""

    topic: EvalTopic
    request: VideoRequest


class EvalRequest(BaseModel):
    name: str
    items: list[EvalItem] = Field(min_length=1, max_length=MAX_TOPICS)
    judge_model: str | None = None


class VideoOutcome(BaseModel):
    """How one topic's job ended, as its eval saw it."""

    job_id: str
    status: JobState
    error: str | None = None
    artifacts: Artifacts | None = None
    wall_s: float


class EvalProgress(BaseModel):
    """An eval while it runs: each topic's job, and the outcomes so far."""

    jobs: dict[str, str] = Field(default_factory=dict)
    """Job id → topic, for every job started."""
    finished: list[VideoOutcome] = Field(default_factory=list)
