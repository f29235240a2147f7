"""What a job plans and makes: the plan, storyboards, narration, each scene's media, the
checkpoint a retry resumes from, and the finished video's artifacts. Only small values (text,
numbers, storage keys): video, audio and images stay in storage."""

from __future__ import annotations

from pydantic import BaseModel, Field

from t2m.vocabulary.usage import Usage


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


class Storyboard(BaseModel):
    visuals: str
    layout: str = ""
    narration: str | None = Field(default=None, max_length=1500)
    """The scene's spoken text, refined to follow the visuals (the outline's when absent)."""
    doc_queries: list[str] = Field(default_factory=list, max_length=8)


class Cue(BaseModel):
    """One subtitle: a sentence and when it is spoken, in seconds."""

    start: float
    end: float
    text: str


class Narration(BaseModel):
    audio_key: str | None
    duration_s: float
    cues: list[Cue]
    usage: Usage = Field(default_factory=Usage)  # a provider voice's requests (espeak-ng: none)


class SceneMedia(BaseModel):
    video_key: str
    narration: Narration
    preview_key: str | None = None  # the render with its narration (SceneStatus.preview_key)


class Checkpoint(BaseModel):
    """The finished part of a job: its plan and the scenes that rendered and were narrated."""

    plan: VideoPlan
    scenes: dict[int, SceneMedia] = Field(default_factory=dict)


class Artifacts(BaseModel):
    video_key: str
    srt_key: str | None = None
    vtt_key: str | None = None
    thumbnail_key: str | None = None
    duration_s: float
    size_bytes: int = 0
    version: int = Field(default=1, ge=1)
    """Each scene regeneration of a finished job makes the next version (`Regeneration`)."""
