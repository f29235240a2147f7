"""Offline narration with espeak-ng: one WAV per scene plus sentence-level subtitle cues.

Each sentence is synthesised on its own so the cues carry the real audio timings.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from functools import cache
from pathlib import Path

from t2m.models import Cue

SENTENCE_GAP_S = 0.25
WORDS_PER_MINUTE = 160


class VoiceError(ValueError):
    """The voice cannot be used (unknown name, or espeak-ng missing)."""


@cache
def available_voices() -> frozenset[str]:
    """Names espeak-ng accepts: language codes, voice names and voice files (`en-us`, `English_(America)`)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return frozenset()
    out = subprocess.run([exe, "--voices"], capture_output=True, text=True, timeout=30).stdout
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5:
            names.update({cols[1], cols[3], cols[4], cols[4].rsplit("/", 1)[-1]})
    return frozenset(names)


@cache
def engine_version() -> str:
    """What makes the same text sound different: espeak-ng's version and this module's pacing
    (part of a narration's storage key, so a changed engine never reuses older audio)."""
    exe = shutil.which("espeak-ng")
    out = (
        subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
        if exe
        else ""
    )
    found = re.search(r"\d+(?:\.\d+)+", out)
    return (
        f"espeak-ng {found.group(0) if found else '?'} wpm={WORDS_PER_MINUTE} gap={SENTENCE_GAP_S}"
    )


def check_voice(voice: str) -> None:
    """Raise VoiceError unless espeak-ng knows `voice` (a `+variant` suffix is allowed)."""
    if shutil.which("espeak-ng") is None:
        raise VoiceError("espeak-ng is not installed (run `make setup`)")
    if voice.split("+", 1)[0] not in available_voices():
        raise VoiceError(
            f"unknown voice {voice!r}: use an espeak-ng voice such as 'en-us' or 'en-gb'"
        )


def split_sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return [p for p in parts if p.strip()]


def synthesize(text: str, voice: str, out: Path) -> tuple[float, list[Cue]]:
    """Write the narration of `text` to `out` (WAV); return its duration and its cues."""
    check_voice(voice)
    exe = shutil.which("espeak-ng") or "espeak-ng"
    out.parent.mkdir(parents=True, exist_ok=True)
    cues: list[Cue] = []
    frames: list[bytes] = []
    params = None
    t = 0.0
    for i, sentence in enumerate(split_sentences(text)):
        part = out.with_name(f"{out.stem}.{i}.wav")
        proc = subprocess.run(
            [exe, "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", str(part), sentence],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode != 0 or not part.exists():
            raise VoiceError(f"espeak-ng cannot speak with voice {voice!r}: {proc.stderr.strip()}")
        with wave.open(str(part)) as w:
            params = w.getparams()
            data = w.readframes(w.getnframes())
            duration = w.getnframes() / w.getframerate()
        part.unlink()
        if frames:
            gap = int(SENTENCE_GAP_S * params.framerate) * params.sampwidth * params.nchannels
            frames.append(b"\0" * gap)
            t += SENTENCE_GAP_S
        frames.append(data)
        cues.append(Cue(start=round(t, 3), end=round(t + duration, 3), text=sentence))
        t += duration
    if params is None:
        raise VoiceError("the narration text is empty")
    with wave.open(str(out), "wb") as w:
        w.setparams(params)
        w.writeframes(b"".join(frames))
    return t, cues
