"""Evaluation: a file of topics made into videos and reported on, optionally judged by a model.

Plain functions and the eval's vocabulary, no Temporal: `load_topics` validates a topic file,
`judge_video` has a model score one video on five axes from its transcript and sampled frames,
`build_report` and `markdown` turn the jobs' outcomes into the report. `workflows/eval.py`
orchestrates them through `activities/eval.py`.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from t2m.models import (
    Artifacts,
    Context,
    JobState,
    JobStatus,
    PlainText,
    Topic,
    Usage,
    VideoRequest,
)

if TYPE_CHECKING:
    from t2m.authoring.llm import ModelClient

MAX_TOPICS = 100
"""Each topic travels in the eval's workflow input: 100 stay far below Temporal's 2 MiB payloads."""
AXES: dict[str, str] = {
    "accuracy_depth": "accuracy & depth",
    "logical_flow": "logical flow",
    "visual_relevance": "visual relevance",
    "element_layout": "element layout",
    "visual_consistency": "visual consistency",
}
"""The judge's five axes (field name → what the report calls it)."""
MAX_TOPIC_FILE_BYTES = 8 * 1024 * 1024
"""Far above 100 topics at their longest: a bigger file (or a device) is refused unread."""
JUDGE_FRAMES = 4
TRANSCRIPT_CHARS = 6000


class EvalTopic(BaseModel):
    """One entry of a topic file; other keys (ids, remarks) a benchmark carries are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    theorem: Topic = Field(validation_alias=AliasChoices("theorem", "topic"))
    description: Context = Field(validation_alias=AliasChoices("description", "context"))
    difficulty: PlainText | None = Field(default=None, max_length=50)
    subfield: PlainText | None = Field(default=None, max_length=100)


class TopicFileError(ValueError):
    """A topic file that is not a JSON list of valid topics; the message is one line."""


_ALIASES = {"theorem": "theorem (or topic)", "description": "description (or context)"}


def parse_topics(text: str, source: str = "topics") -> list[EvalTopic]:
    """The topics of a topic file's text, or TopicFileError naming the entry and the field."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise TopicFileError(f"{source}: not JSON: {e}") from None
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_TOPICS:
        raise TopicFileError(f"{source}: must be a JSON list of 1 to {MAX_TOPICS} topic objects")
    try:
        return TypeAdapter(list[EvalTopic]).validate_python(raw)
    except ValidationError as e:
        first = e.errors()[0]
        index, *field = first["loc"]
        entry = raw[int(index)]
        name = entry.get("theorem") or entry.get("topic") if isinstance(entry, dict) else None
        where = f"entry {int(index) + 1} of {len(raw)}" + (f" ({name!r})" if name else "")
        what = _ALIASES.get(str(field[0]), str(field[0])) + ": " if field else ""
        raise TopicFileError(f"{source}: {where}: {what}{first['msg']}") from None


def load_topics(path: Path) -> list[EvalTopic]:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_TOPIC_FILE_BYTES + 1)
        text = data.decode()
    except (OSError, UnicodeDecodeError) as e:
        raise TopicFileError(f"{path}: cannot be read: {e}") from None
    if len(data) > MAX_TOPIC_FILE_BYTES:
        raise TopicFileError(f"{path}: larger than {MAX_TOPIC_FILE_BYTES // 2**20} MiB")
    return parse_topics(text, str(path))


# --- what travels between the eval workflow and its activities --------------------------------


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


def _one_line(value: str) -> str:
    line = " ".join(value.split())
    if not line:
        raise ValueError("a reason is required")
    return line


class Score(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    score: int = Field(ge=1, le=5)
    reason: Annotated[str, Field(max_length=400), AfterValidator(_one_line)]


class JudgeScores(BaseModel):
    """A judge's answer: each axis scored 1–5 with a one-line reason, nothing else."""

    model_config = ConfigDict(extra="forbid")

    accuracy_depth: Score
    logical_flow: Score
    visual_relevance: Score
    element_layout: Score
    visual_consistency: Score


class Judgement(BaseModel):
    """The scores, or why there are none (the judge failed or answered out of format)."""

    scores: JudgeScores | None = None
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)


class JudgeRequest(BaseModel):
    model: str
    topic: EvalTopic
    video_key: str
    srt_key: str | None


class EvalProgress(BaseModel):
    """An eval while it runs: each topic's job, and the outcomes so far."""

    jobs: dict[str, str] = Field(default_factory=dict)
    """Job id → topic, for every job started."""
    finished: list[VideoOutcome] = Field(default_factory=list)


class ReportRequest(BaseModel):
    eval_id: str
    name: str
    judge_model: str | None
    topics: list[EvalTopic]
    outcomes: list[VideoOutcome]
    judgements: list[Judgement | None]
    wall_s: float


class TopicReport(BaseModel):
    theorem: str
    difficulty: str | None
    subfield: str | None
    job_id: str
    status: JobState
    error: str | None
    wall_s: float
    duration_s: float | None
    scenes: int
    renders: int
    fix_attempts: int
    layout_findings: list[str]
    usage: Usage
    scores: JudgeScores | None
    judge_error: str | None


class Overall(BaseModel):
    topics: int
    completed: int
    success_rate: float
    wall_s: float
    """The whole eval: from its start to its last judgement."""
    mean_job_wall_s: float
    cost_usd: float
    """Every model call: the videos' and the judge's."""
    fix_attempts: int
    layout_findings: int
    judged: int
    mean_scores: dict[str, float]


class EvalReport(BaseModel):
    eval_id: str
    name: str
    judge_model: str | None
    overall: Overall
    topics: list[TopicReport]


class EvalResult(BaseModel):
    """Where the report landed in storage, and its overall figures."""

    eval_id: str
    json_key: str
    markdown_key: str
    overall: Overall


# --- the judge ---------------------------------------------------------------------------------

_SRT_TIMING = re.compile(r"^\d+:\d\d:\d\d[,.]\d+ --> ")


def srt_transcript(srt: str) -> str:
    """The spoken text of an SRT file: its cues' lines, without numbers and timings."""
    lines = []
    for line in srt.splitlines():
        line = line.strip()
        if line and not line.isdigit() and not _SRT_TIMING.match(line):
            lines.append(line)
    return " ".join(lines)


async def judge_video(
    client: ModelClient, model: str, topic: EvalTopic, transcript: str, frames: list[Path]
) -> Judgement:
    """Ask `model` to score a video from its transcript and frames. An answer that is not exactly
    the five scores is a judgement without scores, saying why; a model that cannot be used raises
    `ModelError`, and transient trouble (rate limits, timeouts) raises as litellm raised it."""
    from t2m.authoring.steps import (  # litellm loads only where one judges
        extract_block,
        render_prompt,
    )

    data = {
        **topic.model_dump(exclude_none=True),
        "transcript": transcript[:TRANSCRIPT_CHARS],
        "frames": len(frames),
    }
    content: list[dict] = [{"type": "text", "text": render_prompt("judge_video", data)}]
    for frame in frames:
        b64 = base64.b64encode(frame.read_bytes()).decode()
        content.append({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64}"}})
    answer = await client.complete(model, [{"role": "user", "content": content}])
    try:
        scores = JudgeScores.model_validate_json(extract_block(answer.text, "json"))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        reason = f"{where}: {first['msg']}" if where else first["msg"]
        return Judgement(error=f"the judge's answer is not the five scores: {reason}",
                         usage=answer.usage)  # fmt: skip
    return Judgement(scores=scores, usage=answer.usage)


# --- the report --------------------------------------------------------------------------------


def _topic_report(
    topic: EvalTopic, outcome: VideoOutcome, status: JobStatus | None, judged: Judgement | None
) -> TopicReport:
    scenes = status.scenes if status else []
    usage = Usage()
    for stage in (status.usage if status else {}).values():
        usage = usage.plus(stage)
    if judged is not None:
        usage = usage.plus(judged.usage)
    findings = [f"scene {s.index + 1}: {issue}" for s in scenes for issue in s.layout_issues]
    return TopicReport(
        theorem=topic.theorem,
        difficulty=topic.difficulty,
        subfield=topic.subfield,
        job_id=outcome.job_id,
        status=outcome.status,
        error=outcome.error or (status.error if status else None),
        wall_s=round(outcome.wall_s, 2),
        duration_s=round(outcome.artifacts.duration_s, 2) if outcome.artifacts else None,
        scenes=len(scenes),
        renders=sum(s.attempts for s in scenes),
        fix_attempts=sum(max(0, s.attempts - 1) for s in scenes),
        layout_findings=findings,
        usage=usage,
        scores=judged.scores if judged else None,
        judge_error=judged.error if judged else None,
    )


def build_report(req: ReportRequest, statuses: list[JobStatus | None]) -> EvalReport:
    """The report: per topic from each job's final status, and overall."""
    topics = [
        _topic_report(topic, outcome, status, judged)
        for topic, outcome, status, judged in zip(
            req.topics, req.outcomes, statuses, req.judgements, strict=True
        )
    ]
    completed = sum(t.status == "completed" for t in topics)
    judged = [t.scores for t in topics if t.scores is not None]
    means = {
        axis: round(sum(getattr(s, axis).score for s in judged) / len(judged), 2)
        for axis in AXES
        if judged
    }
    overall = Overall(
        topics=len(topics),
        completed=completed,
        success_rate=round(completed / len(topics), 4),
        wall_s=round(req.wall_s, 2),
        mean_job_wall_s=round(sum(t.wall_s for t in topics) / len(topics), 2),
        cost_usd=round(sum(t.usage.cost_usd for t in topics), 6),
        fix_attempts=sum(t.fix_attempts for t in topics),
        layout_findings=sum(len(t.layout_findings) for t in topics),
        judged=len(judged),
        mean_scores=means,
    )
    return EvalReport(
        eval_id=req.eval_id, name=req.name, judge_model=req.judge_model, overall=overall,
        topics=topics,
    )  # fmt: skip


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def markdown(report: EvalReport) -> str:
    """The report for people: overall figures, a table of topics, then each topic's details."""
    o = report.overall
    lines = [
        f"# Evaluation {_cell(report.name)} ({report.eval_id})",
        "",
        f"- topics: {o.topics}, completed: {o.completed} (success rate {o.success_rate:.0%})",
        f"- wall time: {o.wall_s:.1f} s (mean per job {o.mean_job_wall_s:.1f} s)",
        f"- cost: ${o.cost_usd:.4f}",
        f"- fix attempts: {o.fix_attempts}; layout findings left: {o.layout_findings}",
    ]
    if report.judge_model:
        lines.append(f"- judge: {_cell(report.judge_model)}, {o.judged} of {o.topics} judged")
        for axis, mean in o.mean_scores.items():
            lines.append(f"  - {AXES[axis]}: {mean:.2f} / 5")
    head = ["topic", "status", "wall s", "video s", "cost $", "fixes", "layout"]
    axes = list(AXES) if report.judge_model else []
    lines += ["", "| " + " | ".join(head + [AXES[a] for a in axes]) + " |"]
    lines.append("|" + " --- |" * (len(head) + len(axes)))
    for t in report.topics:
        video = f"{t.duration_s:.1f}" if t.duration_s is not None else "–"
        row = [_cell(t.theorem), t.status, f"{t.wall_s:.1f}", video, f"{t.usage.cost_usd:.4f}"]
        row += [str(t.fix_attempts), str(len(t.layout_findings))]
        row += [str(getattr(t.scores, a).score) if t.scores else "–" for a in axes]
        lines.append("| " + " | ".join(row) + " |")
    for t in report.topics:
        lines += ["", f"## {_cell(t.theorem)}", "", f"- job: `{t.job_id}` ({t.status})"]
        if t.subfield:
            lines.append(f"- subfield: {_cell(t.subfield)}")
        if t.difficulty:
            lines.append(f"- difficulty: {_cell(t.difficulty)}")
        if t.error:
            lines.append(f"- error: {_cell(t.error)}")
        lines += [f"- layout: {_cell(f)}" for f in t.layout_findings]
        if t.scores:
            for axis, label in AXES.items():
                s: Score = getattr(t.scores, axis)
                lines.append(f"- {label}: {s.score}/5 — {_cell(s.reason)}")
        elif t.judge_error:
            lines.append(f"- not judged: {_cell(t.judge_error)}")
    return "\n".join(lines) + "\n"
