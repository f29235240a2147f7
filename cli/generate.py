"""`t2m generate`: its flags, where the job runs, and what it prints.

The job goes to the running API when one answers (`cli.via_api`): the owner is the API key's user
and the server's allow-list, quotas, priority ceiling and result reuse apply. Only when none answers
at the derived address does it start the workflow itself (`cli.local`), on the running Temporal or
on an ephemeral stack. Both build the request from the same flags (`cli.request_flags`) and end
with the same output (`cli.outcome`).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from cli.outcome import fail
from cli.output import out_dir
from t2m.config import Settings
from t2m.vocabulary.request import PRIORITIES, QUALITIES


def add_parser(sub: Any) -> argparse.ArgumentParser:
    g = sub.add_parser(
        "generate",
        help="make a video about TOPIC",
        description="Through the running API when one answers (T2M_API, else the address `t2m up`"
        " serves on: T2M_API_HOST/T2M_API_PORT; key: T2M_API_KEY or the config file), so the"
        " job is the key's user's and the server's rules apply; otherwise on the running"
        " Temporal, or an ephemeral stack it starts and stops itself.",
    )
    g.add_argument("topic", help="what the video explains, 3-500 characters")
    g.add_argument("--context", default="", help="facts and framing for the video")
    g.add_argument(
        "--quality", choices=QUALITIES, default="medium", help="480p15, 720p30, 1080p60, 2160p60"
    )
    g.add_argument("--model", default=None, help="litellm model name (default: T2M_DEFAULT_MODEL)")
    g.add_argument(
        "--voice",
        default=None,
        help="espeak-ng voice name, festival:us_slt, a provider voice from T2M_ALLOWED_VOICES"
        " (e.g. openai/tts-1:nova), or `none` for silence (default: T2M_DEFAULT_VOICE)",
    )
    g.add_argument(
        "--style",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a style preference (repeatable): theme=dark|light, accent_color=#RRGGBB|NAME,"
        " pace=slow|normal|fast, audience=beginner|…|expert, language=fr, or any KEY=text",
    )
    g.add_argument("--rag", action="store_true", help="put Manim docs in the code prompts")
    g.add_argument(
        "--visual-check",
        action="store_true",
        help="have T2M_VISION_MODEL review frames of each scene",
    )
    g.add_argument(
        "--force",
        action="store_true",
        help="make the video anew even if an identical one was made before",
    )
    g.add_argument(
        "--max-cost-usd",
        type=float,
        default=None,
        help="budget of the job's model calls in USD; once spent, fix rounds end"
        " (default: T2M_DEFAULT_MAX_COST_USD, else T2M_MAX_COST_USD_CEILING, else none)",
    )
    g.add_argument(
        "--priority",
        choices=PRIORITIES,
        default="normal",
        help="served before lower priorities (the API may refuse one above your ceiling)",
    )
    g.add_argument("--no-subtitles", action="store_true", help="make no subtitles")
    g.add_argument("--no-thumbnail", action="store_true", help="make no thumbnail")
    g.add_argument("--out", type=out_dir, default=".", help="directory for the results")
    g.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return g


def run(settings: Settings, args: argparse.Namespace, version: str) -> int:
    from cli.remote import ApiError, Remote, load_config

    try:
        config = load_config()
    except ApiError as e:
        return fail(args, None, str(e), code=e.code)
    with Remote(config, version) as remote:
        # A URL someone named must answer; the derived one is tried, then the command goes on
        # without an API.
        if config.named or remote.answers():
            from cli import via_api

            return via_api.generate(remote, args)
    from cli import local

    return asyncio.run(local.generate(settings, args))
