"""The offline model as a litellm custom provider (`offline/...`), registered by
`t2m.authoring.llm.litellm_module`."""

from __future__ import annotations

from typing import Any

from litellm import CustomLLM, ModelResponse

from t2m.authoring.llm.offline import answer, message_text, parse_prompt


class OfflineLLM(CustomLLM):
    """Answers t2m's prompts (plan, storyboard, code, doc searches, fix, critique)
    deterministically."""

    def completion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._respond(kwargs["model"], kwargs["messages"])

    async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._respond(kwargs["model"], kwargs["messages"])

    def _respond(self, model: str, messages: list[dict]) -> ModelResponse:
        prompt = message_text(messages)
        task, data = parse_prompt(prompt)
        text = answer(task, data)
        return ModelResponse(
            model=model,
            choices=[
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
            usage={
                "prompt_tokens": len(prompt) // 4,
                "completion_tokens": len(text) // 4,
                "total_tokens": (len(prompt) + len(text)) // 4,
            },
        )
