"""The storage key layout, in one place: where every object t2m stores lives.

- `jobs/<job>/` a job's artifacts (video, subtitles, thumbnail); `jobs/<job>/v<n>/` its later
  versions; `jobs/<job>/narration/` its narration audio; `jobs/<job>/scenes/` its scenes'
  previews. Deleting a job deletes `jobs/<job>`.
- `renders/` scene renders, keyed by what makes them (code, quality, length, Manim), shared by
  every job so a retry or an identical scene reuses them.
- `llm-cache/` model answers and `speech-cache/` provider speech (per owner scope); `eval/<id>/` evaluation reports;
  `stack/storage-id` the marker that tells whether two processes share one storage.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version

from t2m.media import festival
from t2m.media import speech as tts
from t2m.media.encoding import X264_OPTIONS
from t2m.media.voices import PROVIDER_ENGINE, is_provider_voice

MANIM_VERSION = version("manim")
ENCODER = ",".join([f"av={version('av')}", *(f"{k}={v}" for k, v in sorted(X264_OPTIONS.items()))])
"""Part of a render's key: a render encoded otherwise cannot be joined with this one's clips. PyAV's
wheel carries its own FFmpeg and x264, so its version names the encoder build: a range cached by
a worker on another image is rendered anew rather than met at the join with a different bitstream."""
STORAGE_MARKER = "stack/storage-id"


def _digest(blob: str, length: int = 32) -> str:
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def job_prefix(job_id: str) -> str:
    """Everything a job stored (every version, its narration)."""
    return f"jobs/{job_id}"


def version_prefix(job_id: str, version: int) -> str:
    """Where a version of a job's video lives: `jobs/<id>` (the first), `jobs/<id>/v<n>`."""
    return job_prefix(job_id) if version == 1 else f"{job_prefix(job_id)}/v{version}"


def copied_artifact(job_id: str, key: str) -> str:
    """Where a job keeps its copy of another job's artifact `key` (the whole-result cache)."""
    return f"{job_prefix(job_id)}/{key.rsplit('/', 1)[-1]}"


def render_key(
    code: str, quality: str, min_seconds: float = 0.0, class_name: str = "", span: str = ""
) -> str:
    """Where a render lives; `span` (FIRST,LAST) for one range of a split render."""
    blob = f"{MANIM_VERSION}\0{ENCODER}\0{quality}\0{min_seconds:.3f}\0{code}"
    if class_name:
        blob += f"\0{class_name}"
    if span:
        blob += f"\0span {span}"
    return f"renders/{_digest(blob)}.mp4"


def narration_key(job_id: str, text: str, voice: str) -> str:
    """Where a narration lives: keyed by what it says and how (text, voice, TTS engine), so a
    redo that narrates anew never overwrites the audio a kept scene still uses."""
    if is_provider_voice(voice):
        engine = PROVIDER_ENGINE
    elif festival.is_festival_voice(voice):
        engine = festival.engine_version()
    else:
        engine = tts.engine_version()
    blob = f"{engine}\0{voice}\0{text}"
    return f"{job_prefix(job_id)}/narration/{_digest(blob)}.wav"


def scene_preview_key(job_id: str, render: str, narration: str) -> str:
    """A done scene joined with its narration, playable before the whole video is composed:
    keyed by the render and the narration it joins, under the job (deleted with it)."""
    blob = f"{render}\0{narration}"
    return f"{job_prefix(job_id)}/scenes/{_digest(blob)}.mp4"


def llm_cache_key(digest: str, scope: str | None) -> str:
    """A cached model answer: shared when unscoped, else in its owner scope's partition."""
    return f"llm-cache/{digest}.json" if not scope else f"llm-cache/{_digest(scope)}/{digest}.json"


def speech_cache_key(voice: str, text: str, scope: str) -> str:
    """A provider's answer for one sentence: shared when unscoped, else in its owner's partition."""
    digest = hashlib.sha256(f"{PROVIDER_ENGINE}\0{voice}\0{text}".encode()).hexdigest()
    return (
        f"speech-cache/{digest}.audio"
        if not scope
        else f"speech-cache/{_digest(scope)}/{digest}.audio"
    )


def report_keys(eval_id: str) -> tuple[str, str]:
    """Where an eval's report lives: its JSON and its Markdown."""
    return f"eval/{eval_id}/report.json", f"eval/{eval_id}/report.md"
