"""One request builder for every front end: the API and the CLI turn what a person asked for
(`VideoOptions`) into a `VideoRequest` here, so they accept and reject the same things."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from t2m.config import Settings
from t2m.errors import T2mError
from t2m.media.languages import spoken_language
from t2m.media.speech import VoiceError, check_voice
from t2m.media.voices import is_provider_voice
from t2m.vocabulary.request import VideoOptions, VideoRequest


class InvalidRequest(T2mError, ValueError):
    """Request fields broke rules: `problems` holds every (field, message) found, fields named
    as in the API's `configuration`; `field` and `message` are the first."""

    def __init__(self, field: str, message: str, more: list[tuple[str, str]] | None = None) -> None:
        self.problems = [(field, message), *(more or [])]
        super().__init__("; ".join(f"{f}: {m}" for f, m in self.problems))
        self.field = field
        self.message = message

    @classmethod
    def from_validation(cls, error: ValidationError) -> InvalidRequest:
        """Every problem pydantic found, in the words the API's 422 uses."""
        found = [
            (".".join(str(p) for p in e["loc"]) or "request", plain_message(e["msg"]))
            for e in error.errors()
        ]
        return cls(*found[0], found[1:])


def plain_message(msg: str) -> str:
    """A validation message without pydantic's "Value error, " (or "Assertion failed, ") prefix:
    the rule's own words, for people."""
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def allowed_models(settings: Settings) -> list[str]:
    """Models a request may name: the configured allow-list plus the default model."""
    return list(dict.fromkeys([settings.default_model, *settings.allowed_models]))


def _language_voice(settings: Settings, language: str | None) -> str:
    """The voice when none is given: the style's `language` (an espeak-ng voice of that name),
    or the configured default when there is no language or it is the default's language."""
    default = settings.default_voice
    own = spoken_language({}, default)  # `en-us` → `en`, `festival:us_slt` → `en`
    if not language or own.split("-")[0] == language.split("-")[0] == language:
        return default
    return language


def _voice(settings: Settings, voice: str | None, language: str | None) -> str | None:
    """The voice a request narrates with (None: no narration voice)."""
    chosen = voice or _language_voice(settings, language)
    return None if chosen.lower() == "none" else chosen


def configuration_problems(settings: Settings, fields: dict[str, Any]) -> list[tuple[str, str]]:
    """Every rule of this deployment a request's `configuration` breaks: the model allow-list,
    the vision model, the voice (an espeak-ng voice, or a provider voice on T2M_ALLOWED_VOICES)
    and the budget ceiling, as (field, message) pairs.

    `fields` may be raw (the API checks them even when pydantic refused other fields, so every
    problem is reported at once): a field of the wrong type is left to pydantic's message.
    """
    found: list[tuple[str, str]] = []
    model = fields.get("model") or settings.default_model
    if isinstance(model, str) and model not in allowed_models(settings):
        found.append(
            ("model", f"model {model!r} is not allowed; allowed: {allowed_models(settings)}")
        )
    if fields.get("visual_check") is True and not settings.vision_model:
        found.append(("visual_check", "no vision model is configured (T2M_VISION_MODEL)"))
    style = fields.get("style_preferences")
    language = style.get("language") if isinstance(style, dict) else None
    voice = fields.get("voice")
    if isinstance(voice, str | None) and isinstance(language, str | None):
        chosen = _voice(settings, voice and voice.strip(), language and language.strip().lower())
        try:
            if chosen is not None and is_provider_voice(chosen):
                if chosen not in settings.allowed_voices:
                    raise VoiceError(
                        f"voice {chosen!r} is not allowed; allowed: {settings.allowed_voices}"
                        " (T2M_ALLOWED_VOICES), an espeak-ng voice such as 'en-us' or a"
                        " Festival voice such as 'festival:us_slt'"
                    )
            elif chosen is not None:
                check_voice(chosen)
        except VoiceError as e:
            found.append(
                ("voice", str(e))
                if voice
                else (
                    "style_preferences.language",
                    f"language {language!r} has no espeak-ng voice: give a voice, or a language"
                    " such as en, fr, de, es or pt-br",
                )
            )
    ceiling, asked = settings.max_cost_usd_ceiling, fields.get("max_cost_usd")
    if ceiling is not None and isinstance(asked, int | float) and asked > ceiling:
        found.append(
            (
                "max_cost_usd",
                f"must be at most {ceiling} (the configured ceiling, T2M_MAX_COST_USD_CEILING),"
                f" not {asked}",
            )
        )
    return found


def build_request(settings: Settings, options: VideoOptions, owner: str) -> VideoRequest:
    """Resolve `options` against the configuration; raise InvalidRequest naming every field
    that breaks a rule."""
    if found := configuration_problems(settings, options.model_dump()):
        raise InvalidRequest(*found[0], found[1:])
    language = (options.style_preferences or {}).get("language")
    asked = options.max_cost_usd
    return VideoRequest(
        topic=options.topic,
        context=options.context,
        quality=options.quality,
        model=options.model or settings.default_model,
        voice=_voice(settings, options.voice, language),
        subtitles=options.enable_subtitles,
        thumbnail=options.enable_thumbnails,
        owner=owner,
        max_fix_attempts=settings.max_fix_attempts,
        use_rag=options.use_rag,
        planner_model=settings.planner_model,
        coder_model=settings.coder_model,
        vision_model=settings.vision_model if options.visual_check else None,
        style_preferences=options.style_preferences or {},
        # the request's budget, else the configured default, else the ceiling (None: no budget)
        max_cost_usd=asked
        if asked is not None
        else settings.default_max_cost_usd or settings.max_cost_usd_ceiling,
        reuse=settings.reuse_results and not options.force,
    )
