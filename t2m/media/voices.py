"""Which engine speaks a voice: `PROVIDER/MODEL:VOICE` is a speech provider's through litellm
(`t2m.media.provider_speech`, e.g. `openai/tts-1:nova`); `festival:NAME` is Festival's
(`t2m.media.festival`, offline, in a media jail); any other name is espeak-ng's
(`t2m.media.speech`). Standard library only: workflows import it to budget paid speech."""

from __future__ import annotations

import re

PROVIDER_VOICE = re.compile(r"[a-z0-9_-]+/[^\s:]+:[^\s:]+")
PROVIDER_ENGINE = "litellm-speech 1"
"""Part of a provider narration's storage keys: a change in how speech is requested or joined
bumps it."""


def is_provider_voice(voice: str | None) -> bool:
    return voice is not None and PROVIDER_VOICE.fullmatch(voice) is not None
