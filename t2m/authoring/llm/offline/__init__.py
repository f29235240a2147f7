"""The built-in `offline/...` model: a deterministic litellm provider that needs no network.

It reads the same prompts a real model gets (the `TASK:` line and the JSON `INPUT:` block) and
answers in the same format. It does not know any topic: it presents the context it is given —
every sentence narrated once and shown in full, formulas typeset with a legend, visuals chosen
from what the sentences talk about — in the requested style, paced to the narration's timings.
Plain-text code is its fix; its documentation searches for an error name the Manim API the error
and the code share (`errors.py`). The litellm provider that serves it is `provider.OfflineLLM`
(this package does not import litellm).
"""

from __future__ import annotations

import json
import re

from t2m.authoring.llm.offline.code import fallback_code, scene_code
from t2m.authoring.llm.offline.errors import doc_queries
from t2m.authoring.llm.offline.planner import plan, storyboard
from t2m.authoring.llm.offline.text import find_formulas, strip_tex_io, to_latex

__all__ = [
    "doc_queries",
    "fallback_code",
    "find_formulas",
    "message_text",
    "parse_prompt",
    "plan",
    "scene_code",
    "storyboard",
    "strip_tex_io",
    "to_latex",
]


def answer(task: str, data: dict) -> str:
    """The offline answer to one of t2m's prompts, given its task name and INPUT."""
    style = {str(k): str(v) for k, v in (data.get("style") or {}).items()}
    if task == "plan_video":
        return (
            "```json\n" + json.dumps(plan(data["topic"], data.get("context", ""), style)) + "\n```"
        )
    if task == "storyboard_scene":
        return "```json\n" + json.dumps(storyboard(data["scene"], style)) + "\n```"
    if task == "write_scene_code":
        last = not str(data["scene"].get("narration") or "").strip()  # the silent summary
        timing = data.get("narration_timing") or []
        code = scene_code(data["scene"], data["class_name"], last=last, timing=timing, style=style)
        return "```python\n" + code + "```"
    if task == "doc_queries_for_error":
        return "```json\n" + json.dumps(doc_queries(data["error"], data.get("code", ""))) + "\n```"
    if task == "fix_scene_code":
        return "```python\n" + fallback_code(data["scene"], data["class_name"], style) + "```"
    if task == "critique_scene":
        return str(data.get("approval", "OK"))  # it cannot see images: it approves
    return "The offline model only answers t2m's own prompts."


def message_text(messages: list[dict]) -> str:
    """The text of chat messages, whether their content is a string or a list of parts."""
    texts = []
    for m in messages:
        content = m.get("content", "")
        if isinstance(content, list):
            texts += [p.get("text", "") for p in content if p.get("type") == "text"]
        else:
            texts.append(str(content))
    return "\n".join(texts)


def parse_prompt(prompt: str) -> tuple[str, dict]:
    """Return the task name and the INPUT JSON of a t2m prompt (the first of each)."""
    task = re.search(r"^TASK:\s*(\w+)", prompt, re.MULTILINE)
    block = re.search(r"INPUT:\s*```json\s*\n(.*?)```", prompt, re.DOTALL)
    if not task or not block:
        return "", {}
    return task.group(1), json.loads(block.group(1))
