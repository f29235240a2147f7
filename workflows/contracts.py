"""Contracts between the workflow, its activities and its callers (CLI, API).

Only small values travel here: text, numbers and storage keys. Video, audio and images stay in
storage. The stage list is the one vocabulary for progress everywhere (status, search attribute,
CLI, web).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributeKey

STAGES: tuple[str, ...] = (
    "queued",
    "planning",
    "retrieving",
    "generating_code",
    "rendering",
    "narrating",
    "composing",
    "uploading",
    "completed",
)
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})

Quality = Literal["low", "medium", "high", "ultra"]
SceneState = Literal[
    "pending",
    "storyboarding",
    "retrieving",
    "generating_code",
    "rendering",
    "reviewing",
    "fixing",
    "narrating",
    "done",
    "failed",
]

SA_TOPIC = SearchAttributeKey.for_text("T2mTopic")
SA_OWNER = SearchAttributeKey.for_keyword("T2mOwner")
SA_STAGE = SearchAttributeKey.for_keyword("T2mStage")
SA_QUALITY = SearchAttributeKey.for_keyword("T2mQuality")
SA_MODEL = SearchAttributeKey.for_keyword("T2mModel")
SEARCH_ATTRIBUTES: dict[str, str] = {
    SA_TOPIC.name: "Text",
    SA_OWNER.name: "Keyword",
    SA_STAGE.name: "Keyword",
    SA_QUALITY.name: "Keyword",
    SA_MODEL.name: "Keyword",
}


class VideoRequest(BaseModel):
    """What to make. `resume` carries a failed or cancelled run's finished work into a retry."""

    topic: str = Field(min_length=1)
    context: str = ""
    quality: Quality = "medium"
    model: str
    planner_model: str | None = None
    """Model for the plan and storyboards, when it should differ from `model`."""
    coder_model: str | None = None
    """Model for writing and fixing code, when it should differ from `model`."""
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
    resume: Checkpoint | None = None


class ScenePlan(BaseModel):
    index: int
    title: str
    goal: str = ""
    narration: str
    key_points: list[str] = Field(default_factory=list)
    formula: str | None = None
    """LaTeX for the scene's central formula, if it has one."""
    duration_s: float = Field(default=8.0, gt=0, le=120)


class VideoPlan(BaseModel):
    title: str
    scenes: list[ScenePlan] = Field(min_length=1, max_length=12)


class Checkpoint(BaseModel):
    """The finished part of a job: its plan and the scenes that rendered and were narrated."""

    plan: VideoPlan
    scenes: dict[int, SceneMedia] = Field(default_factory=dict)


class Usage(BaseModel):
    """Model calls, tokens and cost (USD, where litellm knows the model's price)."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def plus(self, other: Usage) -> Usage:
        return Usage(**{f: getattr(self, f) + getattr(other, f) for f in Usage.model_fields})


class PlanResult(BaseModel):
    plan: VideoPlan
    usage: Usage


class Storyboard(BaseModel):
    visuals: str
    layout: str = ""
    narration: str | None = Field(default=None, max_length=1500)
    """The scene's spoken text, refined to follow the visuals (the outline's when absent)."""
    doc_queries: list[str] = Field(default_factory=list, max_length=8)


class StoryboardRequest(BaseModel):
    model: str
    topic: str
    scene: ScenePlan
    scene_count: int


class StoryboardResult(BaseModel):
    storyboard: Storyboard
    usage: Usage


class DocsRequest(BaseModel):
    queries: list[str]
    k: int = 3


class CodeRequest(BaseModel):
    model: str
    topic: str
    scene: ScenePlan
    scene_count: int
    storyboard: Storyboard | None = None
    docs: str | None = None


class FixRequest(BaseModel):
    model: str
    topic: str
    scene: ScenePlan
    code: str
    error: str
    attempt: int
    docs: str | None = None


class CodeResult(BaseModel):
    code: str
    usage: Usage


class CritiqueRequest(BaseModel):
    model: str
    scene: ScenePlan
    video_key: str


class CritiqueResult(BaseModel):
    critique: str | None
    """None when the reviewer approves the frames."""
    usage: Usage


class RenderRequest(BaseModel):
    job_id: str
    scene_index: int
    code: str
    quality: Quality


class RenderOutcome(BaseModel):
    """A code error is a normal outcome (the fix loop handles it), not an activity failure."""

    ok: bool
    video_key: str | None = None
    duration_s: float = 0.0
    error: str | None = None
    layout_issues: list[str] = Field(default_factory=list)
    """Layout check findings (off-frame elements, overlapping text) of a render that worked."""
    reused: bool = False


class Cue(BaseModel):
    start: float
    end: float
    text: str


class NarrateRequest(BaseModel):
    job_id: str
    scene_index: int
    text: str
    voice: str | None


class Narration(BaseModel):
    audio_key: str | None
    duration_s: float
    cues: list[Cue]


class SceneMedia(BaseModel):
    video_key: str
    narration: Narration


class ComposeRequest(BaseModel):
    job_id: str
    scenes: list[SceneMedia]
    subtitles: bool


class ComposeResult(BaseModel):
    video_key: str
    srt_key: str | None
    vtt_key: str | None
    duration_s: float


class ThumbnailRequest(BaseModel):
    job_id: str
    video_key: str
    at_s: float


class FinalizeRequest(BaseModel):
    job_id: str
    keys: list[str]


class SceneStatus(BaseModel):
    index: int
    title: str = ""
    state: SceneState = "pending"
    attempts: int = 0
    error: str | None = None
    layout_issues: list[str] = Field(default_factory=list)
    """What the layout check found: while fixing, in the current render; at the end, in the
    video (when the bounded fix rounds could not clear it)."""


class Artifacts(BaseModel):
    video_key: str
    srt_key: str | None = None
    vtt_key: str | None = None
    thumbnail_key: str | None = None
    duration_s: float
    size_bytes: int = 0


class JobStatus(BaseModel):
    job_id: str
    status: Literal["queued", "running", "completed", "failed", "cancelled"]
    percentage: float = 0.0
    current_stage: str = "queued"
    stages_completed: list[str] = Field(default_factory=list)
    scenes: list[SceneStatus] = Field(default_factory=list)
    error: str | None = None
    artifacts: Artifacts | None = None
    usage: dict[str, Usage] = Field(default_factory=dict)
    """Model usage per stage (planning, storyboarding, generating_code, fixing, reviewing)."""


class JobRecord(BaseModel):
    """A state change of a job, written to the job catalog by the `record_job` activity."""

    job_id: str
    owner: str
    request: dict
    status: str
    progress: JobStatus
    error: str | None = None
    artifacts: Artifacts | None = None
    checkpoint: Checkpoint | None = None


class VideoResult(BaseModel):
    job_id: str
    artifacts: Artifacts
    scenes: int


VideoRequest.model_rebuild()
