"""Every model call goes through litellm; `offline/...` is a custom provider registered here.

litellm is imported on first use (`litellm_module`), with the built-in providers registered, so
a worker serves `offline/...` names exactly the way litellm serves `openai/...` or `gemini/...`.
Importing it costs ~4 s of CPU, ~80% of a worker's start: a restarted worker polls that much
sooner, and a render host that never calls a model never pays it.
`ModelClient` adds what every stage needs around a call: a durable response cache (so a retry or
an identical request does not pay twice; best effort: storage that fails never fails the call),
token and cost accounting, and the split between errors worth retrying (rate limits, timeouts,
outages: raised as they are, for Temporal's retry policy) and errors that are not (`ModelError`:
bad key, unknown model, rejected request).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from t2m import keys
from t2m.catalog.storage import Storage, cached_bytes, keep_bytes
from t2m.errors import ErrorKind, T2mError
from t2m.vocabulary.usage import Usage

if TYPE_CHECKING:
    from litellm import CustomLLM, ModelResponse

_litellm: ModuleType | None = None
_loading = threading.Lock()


def litellm_module() -> ModuleType:
    """litellm, imported the first time it is asked for, with the offline provider registered
    (blocking: from the event loop, await `litellm_loaded` instead)."""
    global _litellm
    with _loading:
        if _litellm is None:
            import litellm

            from t2m.authoring.llm.offline.provider import OfflineLLM

            litellm.suppress_debug_info = True  # no "Provider List" banners in worker logs
            _register(litellm, "offline", OfflineLLM())
            _litellm = litellm
    return _litellm


async def litellm_loaded() -> ModuleType:
    """`litellm_module()`, imported in a thread the first time, so the event loop (heartbeats,
    queries, other activities) goes on meanwhile."""
    return _litellm if _litellm is not None else await asyncio.to_thread(litellm_module)


class ModelError(T2mError):
    """A model call that retrying cannot fix: bad key, unknown model, rejected request."""

    kind = ErrorKind.MODEL_ERROR


def non_retryable(litellm: ModuleType) -> tuple[type[Exception], ...]:
    """litellm's errors that a retry cannot fix: bad key, unknown model, rejected request."""
    return (
        litellm.AuthenticationError,
        litellm.NotFoundError,
        litellm.BadRequestError,
        litellm.PermissionDeniedError,
    )


_CREDENTIALS = re.compile(r"missing credentials|api_key client option must be set", re.IGNORECASE)
_CLASS_CHAIN = re.compile(r"^(?:litellm\.)?\w+(?:Error|Exception)(?::| -)\s*")


def readable(e: BaseException) -> str:
    """One line of what went wrong, without litellm's chain of class names
    ("litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect API key…")."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    while (shorter := _CLASS_CHAIN.sub("", text, count=1)) != text:
        text = shorter
    return text[:300]


def missing_key(model: str) -> str | None:
    """The provider key `model` needs and the environment lacks (e.g. "OPENAI_API_KEY"), or None.

    Asked before the call: without its key litellm fails late and as a retryable
    InternalServerError ("Missing credentials"), so the job sat in retries for a minute.
    Only keys count: a provider that lacks an optional base URL (Ollama's) is not refused.
    """
    try:
        env = litellm_module().validate_environment(model)
    except Exception:  # a name litellm cannot place: the call itself says why
        return None
    missing = [k for k in env.get("missing_keys", []) if k.endswith(("_KEY", "_TOKEN"))]
    if env.get("keys_in_environment") or not missing:
        return None
    return " or ".join(missing)


@dataclass
class Completion:
    text: str
    usage: Usage


def register_provider(name: str, handler: CustomLLM) -> None:
    """Serve model names `name/...` with `handler` (replacing an earlier registration)."""
    _register(litellm_module(), name, handler)


def _register(litellm: ModuleType, name: str, handler: CustomLLM) -> None:
    providers = litellm.custom_provider_map  # changed in place: litellm reads this very list
    providers[:] = [p for p in providers if p["provider"] != name]
    providers.append({"provider": name, "custom_handler": handler})


def _cost(litellm: ModuleType, response: ModelResponse, model: str) -> float:
    """The call's USD cost as litellm priced it (a custom provider's model is priced under the
    name it was asked by, e.g. after `litellm.register_model`); 0 when no price is known. A model
    litellm found no price for and none is registered under is not priced again: the search
    fails the same way, after ~1.7 ms of the worker's CPU (the offline model's every call)."""
    priced = getattr(response, "_hidden_params", {}).get("response_cost")
    if priced is not None:
        return float(priced)
    if model not in litellm.model_cost:
        return 0.0
    try:
        return float(litellm.completion_cost(completion_response=response, model=model) or 0.0)
    except Exception:  # no price known for this model (custom and local models)
        return 0.0


def _answer(entry: bytes | None) -> str | None:
    """The answer a cache entry holds; None for none, or one that cannot be read (a miss)."""
    try:
        return json.loads(entry)["text"] if entry is not None else None
    except (ValueError, KeyError, TypeError):
        return None


Booker = Callable[[float], Awaitable[None]]


class ModelClient:
    """litellm completions with a durable cache in storage (None disables it).

    `scope` partitions the cache (an owner's calls never read another owner's answers); `book`
    is told the cost of every call the provider answered, before the answer is returned, so a
    call that completes after its job was cancelled is paid for all the same.
    """

    TEMPERATURE = 0.2

    def __init__(
        self, cache: Storage | None = None, scope: str = "", book: Booker | None = None
    ) -> None:
        self.cache = cache
        self.scope = scope
        self.book = book

    def scoped(self, scope: str, book: Booker | None) -> ModelClient:
        """This client for one owner's job: its own cache partition, its spend booked."""
        return ModelClient(self.cache, scope, book)

    def _key(self, model: str, messages: list[dict]) -> str:
        blob = json.dumps(
            {"model": model, "messages": messages, "t": self.TEMPERATURE}, sort_keys=True
        )
        return keys.llm_cache_key(hashlib.sha256(blob.encode()).hexdigest(), self.scope)

    async def complete(self, model: str, messages: list[dict]) -> Completion:
        key = self._key(model, messages)
        if self.cache is not None:
            entry = await asyncio.to_thread(cached_bytes, self.cache, key)
            if (text := _answer(entry)) is not None:
                return Completion(text, Usage(calls=1, cached_calls=1))
        litellm = await litellm_loaded()
        if absent := missing_key(model):
            raise ModelError(f"model {model!r} cannot be used: {absent} is not set")
        try:
            response = await litellm.acompletion(
                model=model, messages=messages, temperature=self.TEMPERATURE
            )
        except non_retryable(litellm) as e:
            raise ModelError(f"model {model!r} cannot be used: {readable(e)}") from e
        except litellm.InternalServerError as e:
            if _CREDENTIALS.search(str(e)):  # a key litellm found nowhere (e.g. in a config)
                raise ModelError(f"model {model!r} cannot be used: {readable(e)}") from e
            raise
        text = response.choices[0].message.content or ""
        u = getattr(response, "usage", None)
        usage = Usage(
            calls=1,
            prompt_tokens=int(getattr(u, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(u, "completion_tokens", 0) or 0),
            cost_usd=_cost(litellm, response, model),
        )
        if self.book is not None and usage.cost_usd > 0:
            # Shielded: a cancel arriving now must not lose what the provider has charged.
            await asyncio.shield(self.book(usage.cost_usd))
        if self.cache is not None and text:
            entry = json.dumps({"model": model, "text": text}).encode()
            await asyncio.to_thread(keep_bytes, self.cache, key, entry)
        return Completion(text, usage)
