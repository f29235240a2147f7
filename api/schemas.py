"""HTTP schemas: the seed's REST contract. Separate from workflow contracts even where fields match."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from t2m.vocabulary.job import JobState
from t2m.vocabulary.request import PriorityLevel, VideoOptions, VideoRequest
from t2m.vocabulary.text import multiline_text
from t2m.vocabulary.usage import UsageSummary

Configuration = VideoOptions
"""The request's `configuration`: the same model (and rules) the CLI validates its flags with."""


class Error(BaseModel):
    """Every error: `detail` is a message, or for 422 a list of {loc, msg, type} problems."""

    detail: Any


ERRORS = {
    400: "malformed request (e.g. a body that cannot be parsed, an invalid Content-Length)",
    401: "no valid credentials (WWW-Authenticate: Bearer)",
    403: "not allowed: another user's jobs, or a cross-site request on ambient credentials",
    404: "no such job, or not the caller's",
    409: "the job is not in a state that allows this",
    413: "request body over the limit",
    415: "a body without Content-Type: application/json, on ambient credentials",
    429: "too many jobs or open event streams for this user (Retry-After)",
    503: "a backing service (database, workflow service) is unavailable; try again",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given error codes."""
    return {code: {"model": Error, "description": ERRORS[code]} for code in codes}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class GenerateRequest(Strict):
    configuration: Configuration
    priority: PriorityLevel = "normal"


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
    preview_url: str | None = None
    """Once the scene is done: the scene with its narration, playable before the whole video
    exists (a signed media URL, like video-url's)."""


class StatusProgress(BaseModel):
    percentage: float
    current_stage: str
    stages_completed: list[str]
    scenes: list[SceneProgress]


class JobCreated(BaseModel):
    job_id: str
    status: str
    priority: PriorityLevel
    progress: Progress
    created_at: datetime


class Budget(BaseModel):
    """What the job's current run has spent on model calls against its budget (USD)."""

    max_cost_usd: float
    spent_usd: float
    reached: bool
    """The spend reached the budget: no model is asked again (a running fix loop ends)."""


class JobStatusResponse(BaseModel):
    job_id: str
    status: JobState
    progress: StatusProgress
    error: str | None = None
    reused_from: str | None = None
    """The finished identical job whose video this one reused (the whole-result cache)."""
    version: int | None = None
    """The current video's version, once there is one (see video-url)."""
    previous_version: int | None = None
    """The previous version, while it is kept (see video-url's `previous`)."""
    usage: UsageSummary | None = None
    """Model usage of all the job's runs (a retry adds a run)."""
    budget: Budget | None = None
    """Spend against `max_cost_usd`; null when the job has no budget."""
    retryable: bool | None = None
    """For a failed job: whether a retry can succeed (False: edit the request and resubmit)."""
    held: str | None = None
    """For a running job that makes no progress: why (its workflow task keeps failing, a
    worker problem an operator must fix); null otherwise."""
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    run_started_at: datetime
    """When the current run started: `created_at`, then the last retry or next version (what a
    run's elapsed time counts from)."""


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
    version: int = 1
    """The video's version: 1, then one more each time a scene of the finished job is regenerated."""
    previous: PreviousVersion | None = None
    """The version before this one, downloadable until the next version replaces it."""
    share_url: str | None = None
    """The job's live share link (`/s/{token}`), if it has one."""
    language: str | None = None
    """What the narration and subtitles are in (`en`, `pt-br`; the request's `language` style,
    else its voice's); null when nothing says."""


class PreviousVersion(BaseModel):
    version: int
    video_url: str
    download_url: str
    thumbnail_url: str | None
    subtitles_url: str | None
    duration: float


class RegenerateRequest(Strict):
    feedback: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(multiline_text)]
    """What should change in the scene; it goes into the prompts that write and fix its code."""


class RegenerateResult(BaseModel):
    job_id: str
    status: str
    """`regenerating` (a running job redoes the scene) or `queued` (a new version was started)."""
    index: int
    version: int
    """The version of the video that will have the new scene."""


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
    request: VideoRequest
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


class ShareLink(BaseModel):
    """A link that plays one job's video without credentials, until it is revoked."""

    job_id: str
    token: str
    url: str
    """The page that plays the video: `/s/{token}`."""
    created_at: datetime


class SharedVideo(BaseModel):
    """What a share link shows: the video's topic and its media, reachable with the token only."""

    topic: str
    video_url: str
    thumbnail_url: str | None
    subtitles_url: str | None
    duration: float
    download_url: str | None = None
    """The MP4 as an attachment (`<job id>.mp4`)."""
    language: str | None = None
    """What the narration and subtitles are in (as video-url's `language`)."""
