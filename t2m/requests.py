"""One request builder for every front end: the API and the CLI turn what a person asked for
(`VideoOptions`) into a `VideoRequest` here, so they accept and reject the same things."""

from __future__ import annotations

from pydantic import ValidationError

from t2m.config import Settings
from t2m.media.speech import VoiceError, check_voice
from t2m.models import VideoOptions, VideoRequest


class InvalidRequest(ValueError):
    """A request field broke a rule; `field` names it (as in the API's `configuration`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    @classmethod
    def from_validation(cls, error: ValidationError) -> InvalidRequest:
        """The first problem pydantic found, in the words the API's 422 uses."""
        first = error.errors()[0]
        return cls(".".join(str(p) for p in first["loc"]) or "request", first["msg"])


def allowed_models(settings: Settings) -> list[str]:
    """Models a request may name: the configured allow-list plus the default model."""
    return list(dict.fromkeys([settings.default_model, *settings.allowed_models]))


def _language_voice(settings: Settings, options: VideoOptions) -> str:
    """The voice when none is given: the style's `language` (an espeak-ng voice of that name),
    or the configured default when there is no language or it is the default's language."""
    language = (options.style_preferences or {}).get("language")
    default = settings.default_voice
    if not language or default.lower().split("-")[0] == language.split("-")[0] == language:
        return default
    try:
        check_voice(language)
    except VoiceError:
        raise InvalidRequest(
            "style_preferences",
            f"language {language!r} has no espeak-ng voice: give a voice, or a language such as"
            " en, fr, de, es or pt-br",
        ) from None
    return language


def _budget(settings: Settings, options: VideoOptions) -> float | None:
    """The request's budget, else the configured default, else the ceiling (None: no budget)."""
    ceiling, asked = settings.max_cost_usd_ceiling, options.max_cost_usd
    if asked is None:
        return settings.default_max_cost_usd or ceiling
    if ceiling is not None and asked > ceiling:
        raise InvalidRequest(
            "max_cost_usd",
            f"must be at most {ceiling} (the configured ceiling, T2M_MAX_COST_USD_CEILING),"
            f" not {asked}",
        )
    return asked


def build_request(settings: Settings, options: VideoOptions, owner: str) -> VideoRequest:
    """Resolve `options` against the configuration; raise InvalidRequest naming the field."""
    model = options.model or settings.default_model
    if model not in allowed_models(settings):
        raise InvalidRequest(
            "model", f"model {model!r} is not allowed; allowed: {allowed_models(settings)}"
        )
    if options.visual_check and not settings.vision_model:
        raise InvalidRequest("visual_check", "no vision model is configured (T2M_VISION_MODEL)")
    voice: str | None = options.voice or _language_voice(settings, options)
    if voice is not None and voice.lower() == "none":
        voice = None
    if voice is not None:
        try:
            check_voice(voice)
        except VoiceError as e:
            raise InvalidRequest("voice", str(e)) from None
    return VideoRequest(
        topic=options.topic,
        context=options.context,
        quality=options.quality,
        model=model,
        voice=voice,
        subtitles=options.enable_subtitles,
        thumbnail=options.enable_thumbnails,
        owner=owner,
        max_fix_attempts=settings.max_fix_attempts,
        use_rag=options.use_rag,
        planner_model=settings.planner_model,
        coder_model=settings.coder_model,
        vision_model=settings.vision_model if options.visual_check else None,
        style_preferences=options.style_preferences or {},
        max_cost_usd=_budget(settings, options),
        reuse=settings.reuse_results and not options.force,
    )
