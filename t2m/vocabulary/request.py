"""What a person asks for (`VideoOptions`, the API's `configuration` and the CLI's flags) and
what a job is asked to do (`VideoRequest`, resolved by `t2m.requests.build_request`)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from t2m.vocabulary.plan import Artifacts, Checkpoint
from t2m.vocabulary.style import style_vocabulary
from t2m.vocabulary.text import Context, PlainText, Topic, plain_text

Quality = Literal["low", "medium", "high", "ultra"]
QUALITIES: tuple[Quality, ...] = get_args(Quality)

PriorityLevel = Literal["low", "normal", "high", "urgent"]
PRIORITIES: tuple[PriorityLevel, ...] = get_args(PriorityLevel)
PRIORITY_KEYS: dict[str, int] = {"urgent": 1, "high": 2, "normal": 3, "low": 4}
"""Temporal task priority keys: lower is served first."""


class VideoOptions(BaseModel):
    """What a person asks for: the API's `configuration` object and the CLI's flags.

    Both front ends validate through this one model and `t2m.requests.build_request`, so they
    accept and reject the same requests with the same messages.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    topic: Topic
    context: Context = ""
    model: PlainText | None = Field(default=None, max_length=200)
    quality: Quality = "medium"
    use_rag: bool = False
    visual_check: bool = False
    """Have the configured vision model review frames of each scene."""
    enable_subtitles: bool = True
    enable_thumbnails: bool = True
    style_preferences: dict[str, str] | None = Field(default=None, max_length=20)
    voice: PlainText | None = Field(default=None, max_length=100)
    force: bool = False
    """Make the video anew even when an identical request already has a finished one."""
    max_cost_usd: float | None = Field(default=None, gt=0, le=1_000_000, strict=True)
    """Budget for the job's model calls (USD); the configured default when absent."""

    @field_validator("style_preferences")
    @classmethod
    def _short_preferences(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for key, value in (v or {}).items():
            if len(key) > 50 or len(value) > 200:
                raise ValueError("keys may have at most 50 characters and values at most 200")
            plain_text(key)
            plain_text(value)
        return None if v is None else style_vocabulary(v)


class VideoRequest(BaseModel):
    """What to make, resolved against the configuration (see `t2m.requests.build_request`).

    `resume` carries a failed or cancelled run's finished work into a retry.
    """

    topic: str = Field(min_length=1)
    context: str = ""
    quality: Quality = "medium"
    model: str
    planner_model: str | None = None  # for the plan and storyboards, when not `model`
    coder_model: str | None = None  # for writing and fixing code, when not `model`
    voice: str | None = "en-us"
    """An espeak-ng voice name; None makes a silent video."""
    subtitles: bool = True
    thumbnail: bool = True
    owner: str = "local"
    max_fix_attempts: int = Field(default=3, ge=1, le=10)
    use_rag: bool = False
    """Retrieve Manim docs for the code and fix prompts."""
    vision_model: str | None = None
    """When set, frames of each rendered scene are reviewed by this model (visual check)."""
    style_preferences: dict[str, str] = Field(default_factory=dict)
    max_cost_usd: float | None = None
    """Budget for this run's model calls (USD): once spent, no model is asked again; None: none."""
    reuse: bool = False
    """Answer with a finished identical job's video when there is one (see `t2m.catalog.reuse`); the
    API and the CLI turn it on unless the request says `force` or T2M_REUSE_RESULTS is off."""
    resume: Checkpoint | None = None
    regenerate: Regeneration | None = None


class Regeneration(BaseModel):
    """A finished job's next version: scene `index` authored again with the requester's
    `feedback`, every other scene taken from `VideoRequest.resume`; `previous` stays available."""

    index: int = Field(ge=0)
    feedback: str = ""
    previous: Artifacts
