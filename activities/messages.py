"""What the workflow sends its activities and gets back: small values and storage keys only.

The domain types (plans, storyboards, narration, usage) come from `t2m.vocabulary`; these are the
envelopes around them, one request and one result per activity.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from t2m.vocabulary.plan import Artifacts, Cue, SceneMedia, ScenePlan, Storyboard, VideoPlan
from t2m.vocabulary.request import Quality
from t2m.vocabulary.usage import Usage


class PlanResult(BaseModel):
    plan: VideoPlan
    usage: Usage


class StoryboardRequest(BaseModel):
    model: str
    topic: str
    scene: ScenePlan
    scene_count: int
    style: dict[str, str] = Field(default_factory=dict)
    """The request's style preferences, for the prompt."""


class StoryboardResult(BaseModel):
    storyboard: Storyboard
    usage: Usage


class DocsRequest(BaseModel):
    queries: list[str]
    k: int = 3


class DocQueriesRequest(BaseModel):
    """A failed render's error (and its code), for the model to write documentation searches."""

    model: str
    topic: str
    scene_index: int
    code: str
    error: str
    style: dict[str, str] = Field(default_factory=dict)


class DocQueriesResult(BaseModel):
    queries: list[str]
    usage: Usage


class CodeRequest(BaseModel):
    model: str
    topic: str
    scene: ScenePlan
    scene_count: int
    storyboard: Storyboard | None = None
    docs: str | None = None
    cues: list[Cue] = Field(default_factory=list)
    """The narration's sentences with their start and end times, to pace animations to."""
    style: dict[str, str] = Field(default_factory=dict)
    """The request's style preferences, for the prompt."""
    feedback: str = ""
    """The requester's feedback on an earlier version of the scene (regeneration)."""


class FixRequest(BaseModel):
    model: str
    topic: str
    scene: ScenePlan
    code: str
    error: str
    attempt: int
    docs: str | None = None
    cues: list[Cue] = Field(default_factory=list)
    style: dict[str, str] = Field(default_factory=dict)
    """The request's style preferences, for the prompt."""
    feedback: str = ""


class CodeResult(BaseModel):
    code: str
    usage: Usage


class CritiqueRequest(BaseModel):
    model: str
    scene: ScenePlan
    video_key: str
    style: dict[str, str] = Field(default_factory=dict)
    """The request's style preferences, for the prompt."""


class CritiqueResult(BaseModel):
    critique: str | None
    """None when the reviewer approves the frames."""
    usage: Usage


class RenderRequest(BaseModel):
    job_id: str
    scene_index: int
    code: str
    quality: Quality
    narration_s: float = 0.0
    """The scene's narration length: the render lasts at least this plus a short tail."""
    class_name: str = ""
    """The Scene subclass to render (`authoring.class_name`); absent: the code's only/first."""
    narration_key: str | None = None
    """The scene's narration audio: a render that works is also muxed with it into a preview."""
    span: tuple[int, int] | None = None
    """Only animations FIRST..LAST (from 0, inclusive): one range of a split render."""


class RenderOutcome(BaseModel):
    """A code error is a normal outcome (the fix loop handles it), not an activity failure."""

    ok: bool
    video_key: str | None = None
    duration_s: float = 0.0
    error: str | None = None
    layout_issues: list[str] = Field(default_factory=list)
    """Layout check findings (off-frame elements, overlapping text) of a render that worked."""
    reused: bool = False
    preview_key: str | None = None
    """A render that worked, with its narration: playable on its own (see RenderRequest)."""


class RenderPlan(BaseModel):
    """How to render a scene (`t2m.render.split`): the animation ranges of a split render, each on its
    own render activity; empty: render it whole."""

    ranges: list[tuple[int, int]] = Field(default_factory=list)
    estimate_s: float = 0.0
    """The whole render's estimated time on one slot (0 when there was no dry pass)."""
    slots: int = 0
    """Free render slots seen when the ranges were chosen."""


class JoinRequest(BaseModel):
    """Join the ranges of a split render into the scene's clip."""

    render: RenderRequest
    parts: list[RenderOutcome]


class NarrateRequest(BaseModel):
    job_id: str
    scene_index: int
    text: str
    voice: str | None
    owner: str | None = None
    """Whose cache partition a provider voice's speech is kept in (the job's when unset)."""


class ComposeRequest(BaseModel):
    job_id: str
    scenes: list[SceneMedia]
    subtitles: bool
    version: int = 1
    """Version 1 is stored under `jobs/<id>/`, later ones under `jobs/<id>/v<n>/`."""
    language: str = "und"
    """What the narration and subtitles are in (`t2m.media.languages.spoken_language`)."""


class ComposeResult(BaseModel):
    video_key: str
    srt_key: str | None
    vtt_key: str | None
    duration_s: float


class ThumbnailRequest(BaseModel):
    job_id: str
    video_key: str
    at_s: float
    version: int = 1


class FinalizeRequest(BaseModel):
    job_id: str
    keys: list[str]


class ReconcileRequest(BaseModel):
    grace_s: float = 600.0
    """Rows untouched for this long are repaired even when their workflow closed before the row's
    last write (a retry that never started)."""


class ReconcileReport(BaseModel):
    repaired: dict[str, str] = Field(default_factory=dict)
    """Job id → the status its row was given."""


class Reusable(BaseModel):
    """A finished job whose video an identical request can have (none found: both None)."""

    job_id: str | None = None
    artifacts: Artifacts | None = None
    scenes: int = 0


class CopyArtifactsRequest(BaseModel):
    job_id: str
    source: Artifacts
