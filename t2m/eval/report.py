"""The eval's report: per topic and overall (success, wall time, cost, renders, fixes, layout
findings, scores), as JSON and as Markdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import (
    BaseModel,
)

from t2m.eval.judge import AXES, Judgement, JudgeScores, Score
from t2m.eval.runs import VideoOutcome
from t2m.eval.topics import EvalTopic
from t2m.vocabulary.job import JobState, JobStatus
from t2m.vocabulary.usage import Usage

if TYPE_CHECKING:
    pass


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
        eval_id=req.eval_id,
        name=req.name,
        judge_model=req.judge_model,
        overall=overall,
        topics=topics,
    )


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
