"""The whole-result cache: what makes two requests the same video.

A request's fingerprint covers everything that shapes the video — the normalized topic and
context, the models, quality, voice, options, style and budget — and the versions of what makes it: manim,
the prompts, and `PIPELINE_VERSION` (bump it when a change to t2m changes the videos it makes). A
new job whose fingerprint matches a finished job's copies that job's artifacts instead of making
them again.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from importlib.metadata import version

from t2m.vocabulary.request import VideoRequest

PIPELINE_VERSION = "2026-11-29"


@cache
def _versions() -> dict[str, str]:
    prompts = hashlib.sha256()
    for f in sorted(resources.files("t2m.authoring.prompts").iterdir(), key=lambda f: f.name):
        if f.name.endswith(".md"):
            prompts.update(f.name.encode() + b"\0" + f.read_bytes())
    return {"manim": version("manim"), "prompts": prompts.hexdigest(), "t2m": PIPELINE_VERSION}


def _normal(text: str) -> str:
    return " ".join(text.split())


def fingerprint(req: VideoRequest) -> str:
    content = {
        "topic": _normal(req.topic).casefold(),
        "context": _normal(req.context),
        **req.model_dump(
            include={
                "quality",
                "model",
                "planner_model",
                "coder_model",
                "voice",
                "subtitles",
                "thumbnail",
                "max_fix_attempts",
                "use_rag",
                "vision_model",
                "style_preferences",
                "max_cost_usd",  # a job that reached its budget may have kept a weaker scene
            }
        ),
        "versions": _versions(),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
