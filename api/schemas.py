"""HTTP schemas: the seed's REST contract. Separate from workflow contracts even where fields match."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Priority = Literal["low", "normal", "high", "urgent"]
PRIORITY_KEYS: dict[str, int] = {"urgent": 1, "high": 2, "normal": 3, "low": 4}
"""Temporal task priority: lower keys are served first."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Configuration(Strict):
    topic: str = Field(min_length=3, max_length=500)
    context: str = Field(default="", max_length=2000)
    model: str | None = Field(default=None, max_length=200)
    quality: Literal["low", "medium", "high", "ultra"] = "medium"
    use_rag: bool = False
    visual_check: bool = False
    """Have the configured vision model review frames of each scene (t2m extension)."""
    enable_subtitles: bool = True
    enable_thumbnails: bool = True
    style_preferences: dict[str, str] | None = Field(default=None, max_length=20)
    voice: str | None = Field(default=None, max_length=100)

    @field_validator("style_preferences")
    @classmethod
    def _short_preferences(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for key, value in (v or {}).items():
            if len(key) > 50 or len(value) > 200:
                raise ValueError("keys may have at most 50 characters and values at most 200")
        return v


class GenerateRequest(Strict):
    configuration: Configuration
    priority: Priority = "normal"


class Progress(BaseModel):
    percentage: float
    current_stage: str
    stages_completed: list[str]
    estimated_completion: datetime | None = None


class SceneProgress(BaseModel):
    index: int
    title: str
    state: str
    attempts: int
    error: str | None = None
    layout_issues: list[str] = []


class StatusProgress(BaseModel):
    percentage: float
    current_stage: str
    stages_completed: list[str]
    scenes: list[SceneProgress]


class JobCreated(BaseModel):
    job_id: str
    status: str
    priority: Priority
    progress: Progress
    created_at: datetime


class UsageSummary(BaseModel):
    """Model calls, tokens and cost, per stage and for the whole job."""

    stages: dict[str, dict]
    total: dict


class JobStatusResponse(BaseModel):
    job_id: str
    status: str
    progress: StatusProgress
    error: str | None = None
    usage: UsageSummary | None = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None


class VideoMetadata(BaseModel):
    duration: float
    quality: str
    format: str = "mp4"
    file_size: int
    created_at: datetime


class VideoUrls(BaseModel):
    job_id: str
    status: str
    video_url: str
    download_url: str
    thumbnail_url: str | None
    subtitles_url: str | None
    metadata: VideoMetadata


class JobSummary(BaseModel):
    job_id: str
    owner: str
    status: str
    priority: str
    topic: str
    quality: str
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    error: str | None
    thumbnail_url: str | None
    duration: float | None


class JobDetail(JobSummary):
    request: dict
    progress: StatusProgress | None
    usage: UsageSummary | None = None


class JobList(BaseModel):
    items: list[JobSummary]
    total: int
    page: int
    page_size: int


class ActionResult(BaseModel):
    job_id: str
    status: str
