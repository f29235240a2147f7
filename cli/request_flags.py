"""The job `t2m generate`'s flags describe: options through the API's own model (same rules, same
words), and the whole request when this process starts the job itself."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from t2m.config import Settings
from t2m.vocabulary.request import VideoOptions

if TYPE_CHECKING:
    from t2m.vocabulary.request import VideoRequest


def style_pairs(pairs: list[str]) -> dict[str, str] | None:
    """`--style KEY=VALUE` flags as the request's style preferences."""
    from t2m.requests import InvalidRequest

    style = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest("style_preferences", f"--style takes KEY=VALUE, not {pair!r}")
        style[key.strip()] = value.strip()
    return style or None


def options(args: argparse.Namespace) -> VideoOptions:
    """The options the flags describe, through the API's own model (same rules, same words)."""
    from pydantic import ValidationError

    from t2m.requests import InvalidRequest

    try:
        return VideoOptions(
            topic=args.topic,
            context=args.context,
            model=args.model,
            quality=args.quality,
            use_rag=args.rag,
            visual_check=args.visual_check,
            enable_subtitles=not args.no_subtitles,
            enable_thumbnails=not args.no_thumbnail,
            voice=args.voice,
            force=args.force,
            max_cost_usd=args.max_cost_usd,
            style_preferences=style_pairs(args.style),
        )
    except ValidationError as e:
        raise InvalidRequest.from_validation(e) from None


def request(settings: Settings, args: argparse.Namespace) -> VideoRequest:
    """The whole request for a job this process starts itself, by this process's settings (allowed
    models, voices, budget), as the API would build it."""
    from t2m.requests import build_request

    return build_request(settings, options(args), owner=settings.dev_user or "local")
