"""The model-driven steps of a video: plan, storyboard, write a scene's code, fix it (with doc
searches written from the error), critique it.

Each step fills a prompt file from `t2m/authoring/prompts/` (readable and editable), asks the model through
litellm (`ModelClient`) and parses the answer. No step knows which model answers: `offline/...` is
just a provider. Each returns its result with the tokens and cost it spent.
"""

from __future__ import annotations

import base64
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

from t2m.authoring import manim_api_changes as api_changes
from t2m.authoring.llm import ModelClient
from t2m.errors import ErrorKind, T2mError
from t2m.vocabulary.plan import Cue, ScenePlan, Storyboard, VideoPlan
from t2m.vocabulary.usage import Usage

MIN_SCENES, MAX_SCENES = 3, 7
PLAN_ASKS = 2
"""How often a plan is requested when the answer does not validate (the error is sent back)."""
APPROVAL = "OK"
MAX_DOC_QUERIES = 3
_DOC_QUERIES = TypeAdapter(
    Annotated[
        list[
            Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]
        ],
        Field(min_length=1, max_length=MAX_DOC_QUERIES),
    ]
)


class PlanError(T2mError, ValueError):
    """The model's plan did not validate even after being re-asked with the error."""

    kind = ErrorKind.PLAN_ERROR


@cache
def prompt_template(name: str) -> str:
    return resources.files("t2m.authoring.prompts").joinpath(f"{name}.md").read_text()


def render_prompt(name: str, data: dict, **extra: object) -> str:
    text = prompt_template(name).replace("{input}", json.dumps(data, indent=2, ensure_ascii=False))
    for key, value in extra.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def user(prompt: str) -> list[dict]:
    return [{"role": "user", "content": prompt}]


def extract_block(text: str, lang: str) -> str:
    """The body of the first ```lang fence (or of any fence, or the whole text)."""
    for pattern in (rf"```{lang}\s*\n(.*?)```", r"```[a-zA-Z]*\s*\n(.*?)```"):
        m = re.search(pattern, text, re.DOTALL)
        if m:
            return m.group(1).strip()
    return text.strip()


def class_name(scene: ScenePlan) -> str:
    return f"Scene{scene.index + 1}"


Style = dict[str, str] | None
"""A request's `style_preferences` (see `t2m.vocabulary.style.STYLE_KEYS`), passed to every prompt."""


def _styled(data: dict[str, object], style: Style) -> dict[str, object]:
    """`data` with the request's style preferences under "style", when there are any."""
    if style:
        data["style"] = dict(style)
    return data


def _with_feedback(data: dict[str, object], feedback: str) -> None:
    """A regenerated scene's code and fixes carry what the requester said of its last version."""
    if feedback.strip():
        data["feedback"] = feedback.strip()


def _timing(cues: list[Cue]) -> list[dict[str, object]]:
    """The narration's sentences with when each is spoken, for pacing animations to the voice."""
    return [{"start_s": c.start, "end_s": c.end, "sentence": c.text} for c in cues]


async def plan_video(
    client: ModelClient, model: str, topic: str, context: str, style: Style = None
) -> tuple[VideoPlan, Usage]:
    """An outline of 3–7 scenes, validated; an invalid answer is re-asked with its error."""
    data = _styled({"topic": topic, "context": context}, style)
    prompt = render_prompt("plan_video", data, min_scenes=MIN_SCENES, max_scenes=MAX_SCENES)
    usage, error = Usage(), ""
    for _ in range(PLAN_ASKS):
        answer = await client.complete(model, user(prompt + error))
        usage = usage.plus(answer.usage)
        try:
            raw = json.loads(extract_block(answer.text, "json"))
            scenes = [{**s, "index": i} for i, s in enumerate(raw.get("scenes", []))]
            plan = VideoPlan.model_validate({**raw, "scenes": scenes})
            if not MIN_SCENES <= len(plan.scenes) <= MAX_SCENES:
                raise ValueError(f"the plan must have {MIN_SCENES}–{MAX_SCENES} scenes")
            return plan, usage
        except (ValueError, ValidationError, AttributeError, TypeError) as e:
            error = f"\n\nYour previous answer was invalid: {e}\nAnswer again, correctly."
    raise PlanError(f"the model's plan was invalid after {PLAN_ASKS} asks:{error.split(':', 1)[1]}")


async def storyboard_scene(
    client: ModelClient,
    model: str,
    topic: str,
    scene: ScenePlan,
    scene_count: int,
    style: Style = None,
) -> tuple[Storyboard, Usage]:
    data = _styled({"topic": topic, "scene_count": scene_count, "scene": scene.model_dump()}, style)
    answer = await client.complete(model, user(render_prompt("storyboard_scene", data)))
    try:
        board = Storyboard.model_validate_json(extract_block(answer.text, "json"))
    except ValidationError:  # a storyboard is guidance: a loose answer is still worth passing on
        board = Storyboard(visuals=answer.text.strip()[:2000], layout="", doc_queries=[scene.title])
    return board, answer.usage


def _scene_code_data(
    topic: str,
    scene: ScenePlan,
    docs: str | None,
    cues: list[Cue] | None,
    style: Style,
    **fields: object,
) -> dict[str, object]:
    """What the code-writing and code-fixing prompts both get about the scene."""
    data: dict[str, object] = {
        "topic": topic,
        "class_name": class_name(scene),
        "scene": scene.model_dump(),
        **fields,
    }
    _styled(data, style)
    if cues:
        data["narration_timing"] = _timing(cues)
    if docs:
        data["docs"] = docs
    return data


async def write_scene_code(
    client: ModelClient,
    model: str,
    topic: str,
    scene: ScenePlan,
    scene_count: int,
    storyboard: Storyboard | None = None,
    docs: str | None = None,
    cues: list[Cue] | None = None,
    style: Style = None,
    feedback: str = "",
) -> tuple[str, Usage]:
    data = _scene_code_data(topic, scene, docs, cues, style, scene_count=scene_count)
    if storyboard is not None:
        data["storyboard"] = storyboard.model_dump(exclude={"doc_queries"})
    _with_feedback(data, feedback)
    answer = await client.complete(model, user(render_prompt("write_scene_code", data)))
    return extract_block(answer.text, "python"), answer.usage


async def fix_scene_code(
    client: ModelClient,
    model: str,
    topic: str,
    scene: ScenePlan,
    code: str,
    error: str,
    attempt: int,
    docs: str | None = None,
    cues: list[Cue] | None = None,
    style: Style = None,
    feedback: str = "",
) -> tuple[str, Usage]:
    data = _scene_code_data(
        topic, scene, docs, cues, style, attempt=attempt, code=code, error=error
    )
    changes = api_changes.hints(error)
    if changes:  # the error names Manim API that has been removed or renamed
        data["api_changes"] = changes
    _with_feedback(data, feedback)
    answer = await client.complete(model, user(render_prompt("fix_scene_code", data)))
    return extract_block(answer.text, "python"), answer.usage


async def doc_queries_for_error(
    client: ModelClient, model: str, topic: str, code: str, error: str, style: Style = None
) -> tuple[list[str], Usage]:
    """1–3 documentation searches for what a failed render's error is about, written by the model
    (a traceback's last line alone is a poor query). An answer that is not a JSON list of 1–3
    short strings falls back to that last line: the fix goes ahead either way."""
    data = _styled({"topic": topic, "code": code, "error": error}, style)
    answer = await client.complete(model, user(render_prompt("doc_queries_for_error", data)))
    try:
        queries = _DOC_QUERIES.validate_json(extract_block(answer.text, "json"))
    except ValidationError:
        queries = [(error.strip().splitlines() or [topic])[-1]]
    return list(dict.fromkeys(queries)), answer.usage


async def critique_frames(
    client: ModelClient, model: str, scene: ScenePlan, frames: list[Path], style: Style = None
) -> tuple[str | None, Usage]:
    """Ask a vision model whether sampled frames show the scene legibly; None means approved."""
    data = _styled({"scene": scene.model_dump(), "approval": APPROVAL}, style)
    content: list[dict] = [{"type": "text", "text": render_prompt("critique_scene", data)}]
    for frame in frames:
        b64 = base64.b64encode(frame.read_bytes()).decode()
        content.append({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64}"}})
    answer = await client.complete(model, [{"role": "user", "content": content}])
    verdict = answer.text.strip()
    return (None if verdict.upper().startswith(APPROVAL) else verdict), answer.usage
