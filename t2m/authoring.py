"""The model-driven steps of a video: plan the scenes, write a scene's code, fix it.

Each step fills a prompt file from `t2m/prompts/` (readable and editable), asks the model through
litellm and parses the answer. No step knows which model answers: `offline/...` is just a provider.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

from pydantic import ValidationError

from t2m import llm
from workflows.contracts import ScenePlan, VideoPlan

MIN_SCENES, MAX_SCENES = 3, 5
PLAN_ASKS = 2
"""How often a plan is requested when the answer does not validate (the error is sent back)."""


class PlanError(ValueError):
    """The model's plan did not validate even after being re-asked with the error."""


@cache
def prompt_template(name: str) -> str:
    return resources.files("t2m.prompts").joinpath(f"{name}.md").read_text()


def render_prompt(name: str, data: dict, **extra: object) -> str:
    text = prompt_template(name).replace("{input}", json.dumps(data, indent=2, ensure_ascii=False))
    for key, value in extra.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def extract_block(text: str, lang: str) -> str:
    """The body of the first ```lang fence (or of any fence, or the whole text)."""
    for pattern in (rf"```{lang}\s*\n(.*?)```", r"```[a-zA-Z]*\s*\n(.*?)```"):
        m = re.search(pattern, text, re.DOTALL)
        if m:
            return m.group(1).strip()
    return text.strip()


def class_name(scene: ScenePlan) -> str:
    return f"Scene{scene.index + 1}"


async def plan_video(model: str, topic: str, context: str) -> VideoPlan:
    data = {"topic": topic, "context": context}
    prompt = render_prompt("plan_video", data, min_scenes=MIN_SCENES, max_scenes=MAX_SCENES)
    error = ""
    for _ in range(PLAN_ASKS):
        answer = await llm.complete(model, prompt + error)
        try:
            raw = json.loads(extract_block(answer, "json"))
            scenes = [{**s, "index": i} for i, s in enumerate(raw.get("scenes", []))]
            plan = VideoPlan.model_validate({**raw, "scenes": scenes})
            if not MIN_SCENES <= len(plan.scenes) <= MAX_SCENES:
                raise ValueError(f"the plan must have {MIN_SCENES}–{MAX_SCENES} scenes")
            return plan
        except (ValueError, ValidationError, AttributeError, TypeError) as e:
            error = f"\n\nYour previous answer was invalid: {e}\nAnswer again, correctly."
    raise PlanError(f"the model's plan was invalid after {PLAN_ASKS} asks:{error.split(':', 1)[1]}")


async def write_scene_code(model: str, topic: str, scene: ScenePlan, scene_count: int) -> str:
    data = {
        "topic": topic,
        "scene_count": scene_count,
        "class_name": class_name(scene),
        "scene": scene.model_dump(),
    }
    return extract_block(
        await llm.complete(model, render_prompt("write_scene_code", data)), "python"
    )


async def fix_scene_code(
    model: str, topic: str, scene: ScenePlan, code: str, error: str, attempt: int
) -> str:
    data = {
        "topic": topic,
        "class_name": class_name(scene),
        "attempt": attempt,
        "scene": scene.model_dump(),
        "code": code,
        "error": error,
    }
    return extract_block(await llm.complete(model, render_prompt("fix_scene_code", data)), "python")
