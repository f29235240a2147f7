"""Neural narration through litellm's speech API: `PROVIDER/MODEL:VOICE` voices such as
`openai/tts-1:nova`, `azure/tts:alloy`, `elevenlabs/eleven_multilingual_v2:VOICE_ID` or any
OpenAI-compatible speech server (`OPENAI_API_BASE`, e.g. Kokoro-FastAPI or speaches).

Each sentence is one request, so the cues carry the real audio timings (measured after decoding,
in a media jail: the provider's bytes are untrusted like a render's). Answers are cached in
storage by (model, voice, sentence) in the caller's partition, like model answers: a retry or an
identical job pays nothing (best effort: storage that fails never fails the narration). Rate
limits, timeouts and outages raise as they are (Temporal retries them); a bad key, an unknown
model or voice raises `SpeechError` (fail at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType

from t2m.authoring.llm import litellm_loaded, missing_key, non_retryable, readable
from t2m.catalog.storage import Storage, cached_bytes, keep_bytes
from t2m.keys import speech_cache_key
from t2m.vocabulary.usage import Usage

MAX_SPEECH_BYTES = 16 * 1024**2
"""The most audio one sentence may come back as (about 16 minutes of MP3 at 128 kbit/s)."""
TIMEOUT_S = 60.0

Booker = Callable[[float], Awaitable[None]]


class SpeechError(ValueError):
    """The voice cannot be used (bad key, unknown model or voice, rejected request)."""


def split_voice(voice: str) -> tuple[str, str]:
    """`openai/tts-1:nova` → (`openai/tts-1`, `nova`): litellm's model name and the voice."""
    model, _, name = voice.rpartition(":")
    return model, name


@dataclass
class Spoken:
    audio: list[bytes]
    """One encoded audio file (any format the provider chose) per sentence."""
    usage: Usage


def _cost(litellm: ModuleType, response: object, model: str, text: str) -> float:
    """The request's USD cost as litellm prices it (per character for OpenAI's TTS models);
    0 when no price is known (local servers)."""
    priced = getattr(response, "_hidden_params", {}).get("response_cost")
    if priced is not None:
        return float(priced)
    try:
        cost = litellm.completion_cost(
            completion_response=response, model=model, prompt=text, call_type="aspeech"
        )
        return float(cost or 0.0)
    except Exception:  # no price known for this model
        return 0.0


class SpeechClient:
    """litellm speech with a durable per-sentence cache in storage (None disables it)."""

    def __init__(self, cache: Storage | None, scope: str = "", book: Booker | None = None) -> None:
        self.cache = cache
        self.scope = scope
        self.book = book

    def _key(self, voice: str, text: str) -> str:
        return speech_cache_key(voice, text, self.scope)

    async def _request(self, voice: str, text: str) -> tuple[bytes, float]:
        model, name = split_voice(voice)
        litellm = await litellm_loaded()
        try:
            response = await litellm.aspeech(
                model=model, voice=name, input=text, timeout=TIMEOUT_S, max_retries=0
            )
        except (*non_retryable(litellm), litellm.UnsupportedParamsError) as e:
            raise SpeechError(f"voice {voice!r} cannot be used: {readable(e)}") from e
        except litellm.APIConnectionError as e:
            if "not supported" in str(e).lower() or "llm provider" in str(e).lower():
                raise SpeechError(f"voice {voice!r} cannot be used: {readable(e)}") from e
            raise
        audio = response.content
        if not audio:
            raise SpeechError(f"voice {voice!r} answered with no audio")
        if len(audio) > MAX_SPEECH_BYTES:
            raise SpeechError(f"voice {voice!r} answered with more than {MAX_SPEECH_BYTES} bytes")
        return audio, _cost(litellm, response, model, text)

    async def speak(self, voice: str, sentences: list[str]) -> Spoken:
        """Each sentence's audio, from the cache or the provider (the cost of each answered
        request booked before it is cached)."""
        model, _ = split_voice(voice)
        usage, audio = Usage(), []
        for text in sentences:
            key = self._key(voice, text)
            kept = (
                await asyncio.to_thread(cached_bytes, self.cache, key, MAX_SPEECH_BYTES)
                if self.cache is not None
                else None
            )
            if kept is not None:
                audio.append(kept)
                usage = usage.plus(Usage(calls=1, cached_calls=1))
                continue
            await litellm_loaded()  # imported off the event loop before missing_key asks it
            if absent := missing_key(model):
                raise SpeechError(f"voice {voice!r} cannot be used: {absent} is not set")
            data, cost = await self._request(voice, text)
            if self.book is not None and cost > 0:
                # Shielded: a cancel arriving now must not lose what the provider has charged.
                await asyncio.shield(self.book(cost))
            if self.cache is not None:
                await asyncio.to_thread(keep_bytes, self.cache, key, data)
            audio.append(data)
            usage = usage.plus(Usage(calls=1, cost_usd=cost))
        return Spoken(audio, usage)
