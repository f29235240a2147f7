"""t2m's vocabulary: what a video request, a plan, a job's status and its artifacts are.

The bottom of the import graph: only pydantic and the standard library. The workflow, the
activities, the API and the CLI all speak these types; the lists of qualities, priorities,
statuses and stages are derived from their `Literal`s here and nowhere else. Only small values
travel in these models (text, numbers, storage keys); video, audio and images stay in storage.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

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

Quality = Literal["low", "medium", "high", "ultra"]
QUALITIES: tuple[Quality, ...] = get_args(Quality)

Priority = Literal["low", "normal", "high", "urgent"]
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
PRIORITY_KEYS: dict[str, int] = {"urgent": 1, "high": 2, "normal": 3, "low": 4}
"""Temporal task priority keys: lower is served first."""

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


def _bad_char(value: str, allowed: str) -> str | None:
    """A lone surrogate or a control character (other than those in `allowed`), described."""
    for ch in value:
        kind = unicodedata.category(ch)
        if kind == "Cs":
            return f"a lone surrogate (U+{ord(ch):04X})"
        if kind == "Cc" and ch not in allowed:
            return f"a control character (U+{ord(ch):04X})"
    return None


def plain_text(value: str) -> str:
    """One line of text: no control characters and no lone surrogates.

    They cannot be stored (PostgreSQL refuses NUL, UTF-8 refuses lone surrogates) and have no
    business in a title, a name or a model; refusing them here gives a 422 naming the field.
    """
    bad = _bad_char(value, "")
    if bad:
        raise ValueError(f"must not contain {bad}")
    return value


def multiline_text(value: str) -> str:
    """Like `plain_text`, but line breaks and tabs are allowed."""
    bad = _bad_char(value, "\n\t\r")
    if bad:
        raise ValueError(f"must not contain {bad}")
    return value


USER_NAME_MAX = 200


def user_name(value: str) -> str:
    """A user (job owner) name, from an API key or a JWT's `sub`.

    `*` is the admins' "everyone" in job listings, so it may not appear in a name; nor may control
    characters, lone surrogates or surrounding whitespace.
    """
    if not value or len(value) > USER_NAME_MAX:
        raise ValueError(f"a user name has 1 to {USER_NAME_MAX} characters")
    if value != value.strip():
        raise ValueError("a user name must not start or end with whitespace")
    bad = "'*'" if "*" in value else _bad_char(value, "")
    if bad:
        raise ValueError(f"a user name must not contain {bad}")
    return value


STYLE_CHOICES: dict[str, tuple[str, ...]] = {
    "theme": ("dark", "light"),
    "pace": ("slow", "normal", "fast"),
    "audience": ("beginner", "general", "intermediate", "advanced", "expert"),
}
"""Known `style_preferences` keys with a closed set of values; `accent_color` and `language` are
checked by shape; any other key passes to the prompts as free text."""
STYLE_KEYS = (*STYLE_CHOICES, "accent_color", "language")
_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
NAMED_COLORS = {
    "blue": "#58C4DD", "teal": "#5CD0B3", "green": "#83C167", "yellow": "#FFFF00",
    "gold": "#F0AC5F", "red": "#FC6255", "maroon": "#C55F73", "purple": "#9A72AC",
    "pink": "#D147BD", "orange": "#FF862F", "white": "#FFFFFF", "black": "#000000",
    "gray": "#888888", "grey": "#888888",
}  # fmt: skip
"""Manim's colour names an `accent_color` may use (its hex values), besides `#RRGGBB`/`#RGB`."""


def style_vocabulary(prefs: dict[str, str]) -> dict[str, str]:
    """Known style keys normalized (lower case; `Accent-Color` → `accent_color`) and their values
    checked; a bad value raises ValueError naming the key and what it may be."""
    out: dict[str, str] = {}
    for key, value in prefs.items():
        known = key.strip().lower().replace("-", "_").replace(" ", "_")
        if known not in STYLE_KEYS:
            out[key] = value
            continue
        v = value.strip().lower()
        if known in STYLE_CHOICES and v not in STYLE_CHOICES[known]:
            raise ValueError(
                f"{known} must be one of {'|'.join(STYLE_CHOICES[known])}, not {value!r}"
            )
        if known == "accent_color":
            v = NAMED_COLORS.get(v.replace("_", ""), v).upper()
            if not _HEX_COLOR.fullmatch(v):
                names = ", ".join(NAMED_COLORS)
                raise ValueError(
                    f"accent_color must be #RRGGBB, #RGB or one of {names}, not {value!r}"
                )
        if known == "language" and not re.fullmatch(r"[a-z]{2,3}(?:-[a-z0-9]{2,8}){0,2}", v):
            raise ValueError(
                f"language must be a language code such as en, fr or pt-br, not {value!r}"
            )
        out[known] = v
    return out


PlainText = Annotated[str, AfterValidator(plain_text)]
Topic = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=500),
    AfterValidator(plain_text),
]
Context = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000), AfterValidator(multiline_text)
]


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


class Usage(BaseModel):
    """Model calls, tokens and cost (USD, where litellm knows the model's price)."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def plus(self, other: Usage) -> Usage:
        return Usage(**{f: getattr(self, f) + getattr(other, f) for f in Usage.model_fields})


class UsageSummary(BaseModel):
    """Usage per stage and for the whole job, as stored in the catalog and shown in status."""

    stages: dict[str, Usage]
    total: Usage


def usage_summary(per_stage: dict[str, Usage]) -> UsageSummary:
    total = Usage()
    for u in per_stage.values():
        total = total.plus(u)
    return UsageSummary(stages=per_stage, total=total)


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


class SceneMedia(BaseModel):
    video_key: str
    narration: Narration


class Checkpoint(BaseModel):
    """The finished part of a job: its plan and the scenes that rendered and were narrated."""

    plan: VideoPlan
    scenes: dict[int, SceneMedia] = Field(default_factory=dict)


class VideoRequest(BaseModel):
    """What to make, resolved against the configuration (see `t2m.requests.build_request`).

    `resume` carries a failed or cancelled run's finished work into a retry.
    """

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
    style_preferences: dict[str, str] = Field(default_factory=dict)
    max_cost_usd: float | None = None
    """Budget for this run's model calls (USD): once spent, no model is asked again; None: none."""
    reuse: bool = False
    """Answer with a finished identical job's video when there is one (see `t2m.catalog.reuse`); the
    API and the CLI turn it on unless the request says `force` or T2M_REUSE_RESULTS is off."""
    resume: Checkpoint | None = None
    regenerate: Regeneration | None = None


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
    version: int = Field(default=1, ge=1)
    """Each scene regeneration of a finished job makes the next version (`Regeneration`)."""


class Regeneration(BaseModel):
    """A finished job's next version: scene `index` authored again with the requester's
    `feedback`, every other scene taken from `VideoRequest.resume`; `previous` stays available."""

    index: int = Field(ge=0)
    feedback: str = ""
    previous: Artifacts


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
