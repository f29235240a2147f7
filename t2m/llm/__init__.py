"""Every model call goes through litellm; `offline/...` is a custom provider registered here.

Importing this module registers the built-in providers, so a worker that can run an activity can
serve `offline/...` names exactly the way litellm serves `openai/...` or `gemini/...`.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map

import litellm  # noqa: E402
from litellm import CustomLLM  # noqa: E402

from t2m.llm.offline import OfflineLLM  # noqa: E402


class ModelError(Exception):
    """A model call that retrying cannot fix: bad key, unknown model, rejected request."""


_NON_RETRYABLE = (
    litellm.AuthenticationError,
    litellm.NotFoundError,
    litellm.BadRequestError,
    litellm.PermissionDeniedError,
)


def register_provider(name: str, handler: CustomLLM) -> None:
    """Serve model names `name/...` with `handler` (replacing an earlier registration)."""
    litellm.custom_provider_map = [
        p for p in litellm.custom_provider_map if p["provider"] != name
    ] + [{"provider": name, "custom_handler": handler}]


async def complete(model: str, prompt: str, *, system: str | None = None) -> str:
    """Return the text of one chat completion of `prompt` by `model`."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    try:
        response = await litellm.acompletion(model=model, messages=messages, temperature=0.2)
    except _NON_RETRYABLE as e:
        raise ModelError(f"model {model!r} cannot be used: {e}") from e
    except litellm.exceptions.BadRequestError as e:  # e.g. "LLM Provider NOT provided"
        raise ModelError(f"model {model!r} cannot be used: {e}") from e
    return response.choices[0].message.content or ""


register_provider("offline", OfflineLLM())
