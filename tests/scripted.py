"""A scripted model for tests, served through the same litellm custom-provider path as `offline/`.

A test sets `handler(task, data)`; it returns the answer text, raises to simulate a provider error
(e.g. `litellm.RateLimitError`), or returns None to let the offline model answer. Every prompt is
recorded for assertions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litellm import CustomLLM, ModelResponse

from t2m.authoring.llm.offline import message_text, parse_prompt
from t2m.authoring.llm.offline.provider import OfflineLLM

Handler = Callable[[str, dict], str | None]
Gate = Callable[[str, dict], Awaitable[None]]


class ScriptedLLM(CustomLLM):
    def __init__(self) -> None:
        super().__init__()
        self.offline = OfflineLLM()
        self.reset()

    def reset(self) -> None:
        self.handler: Handler = lambda task, data: None
        self.gate: Gate | None = None
        """Awaited before an answer (async calls only): a test holds a step back until it says."""
        self.prompts: list[tuple[str, dict, str]] = []
        self.images: list[int] = []
        """Images attached to each request, in order."""
        self.models: list[str] = []
        """The model each request named (without the provider prefix)."""

    def prompts_for(self, task: str) -> list[tuple[dict, str]]:
        return [(d, p) for t, d, p in self.prompts if t == task]

    async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        if self.gate is not None:
            await self.gate(*parse_prompt(message_text(kwargs["messages"])))
        return self.completion(*args, **kwargs)

    def completion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        messages = kwargs["messages"]
        prompt = message_text(messages)
        task, data = parse_prompt(prompt)
        self.prompts.append((task, data, prompt))
        self.models.append(kwargs["model"])
        self.images.append(
            sum(
                1
                for m in messages
                if isinstance(m["content"], list)
                for p in m["content"]
                if p["type"] == "image_url"
            )
        )
        text = self.handler(task, data)
        if text is None:
            return self.offline.completion(*args, **kwargs)
        return ModelResponse(
            model=kwargs["model"],
            choices=[{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            usage={"prompt_tokens": len(prompt) // 4, "completion_tokens": len(text) // 4,
                   "total_tokens": (len(prompt) + len(text)) // 4},
        )  # fmt: skip


def plan_json(*titles: str, duration: float = 3.0) -> str:
    """A valid plan answer with one short scene per title."""
    import json

    scenes = [
        {
            "title": t,
            "goal": t,
            "narration": f"This is {t}.",
            "key_points": [t],
            "duration_s": duration,
        }
        for t in titles
    ]
    return "```json\n" + json.dumps({"title": "Test", "scenes": scenes}) + "\n```"


def scene_code(class_name: str, body: str | None = None) -> str:
    body = body or "self.play(Create(Circle()))"
    return f"```python\nfrom manim import *\n\nclass {class_name}(Scene):\n    def construct(self):\n        {body}\n```"
