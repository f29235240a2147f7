"""The judge: a model scores one video on five axes from its transcript and sampled frames;
an answer out of format is a judgement without scores, saying why."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from t2m.eval.topics import EvalTopic
from t2m.vocabulary.usage import Usage

if TYPE_CHECKING:
    from t2m.authoring.llm import ModelClient

AXES: dict[str, str] = {
    "accuracy_depth": "accuracy & depth",
    "logical_flow": "logical flow",
    "visual_relevance": "visual relevance",
    "element_layout": "element layout",
    "visual_consistency": "visual consistency",
}
"""The judge's five axes (field name → what the report calls it)."""
JUDGE_FRAMES = 4
TRANSCRIPT_CHARS = 6000


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
        return Judgement(
            error=f"the judge's answer is not the five scores: {reason}", usage=answer.usage
        )
    return Judgement(scores=scores, usage=answer.usage)
