"""Offline narration with espeak-ng: one WAV per scene plus sentence-level subtitle cues (the
offline Festival voices are `t2m.media.festival`'s, spoken in a media jail).

Each sentence is synthesised on its own so the cues carry the real audio timings.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from functools import cache
from pathlib import Path

from t2m.errors import ErrorKind, T2mError
from t2m.media import festival
from t2m.vocabulary.plan import Cue

SENTENCE_GAP_S = 0.25
WORDS_PER_MINUTE = 160


class VoiceError(T2mError, ValueError):
    """The voice cannot be used (unknown name, or its engine missing)."""

    kind = ErrorKind.VOICE_ERROR


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
    """Raise VoiceError unless `voice` is an installed Festival voice (`festival:us_slt`) or
    espeak-ng knows it (a `+variant` suffix is allowed)."""
    if festival.is_festival_voice(voice):
        if why := festival.problem(voice):
            raise VoiceError(why)
        return
    if shutil.which("espeak-ng") is None:
        raise VoiceError("espeak-ng is not installed (run `make setup`)")
    if voice.split("+", 1)[0] not in available_voices():
        raise VoiceError(
            f"unknown voice {voice!r}: use an espeak-ng voice such as 'en-us' or 'en-gb'"
            f" or a Festival voice ({', '.join(sorted(festival.VOICES))})"
        )


ABBREVIATIONS = ("e.g.", "i.e.", "cf.", "vs.", "Dr.", "Mr.", "Mrs.", "Ms.", "Prof.", "St.", "Fig.",
                 "Figs.", "Eq.", "Eqs.", "approx.", "No.", "resp.", "Ch.", "Sec.", "p.", "pp.")  # fmt: skip
"""Abbreviations whose dot never ends a sentence (`etc.` may: it often ends one)."""
_END = re.compile(r"[.!?][\"')\]]*\s+")
_GOES_ON = set("+-−*/=^×·<>≤≥≈≠,;:)]}|")
"""What follows a `.`, `!` or `?` that does not end a sentence: `3! + x`, `n! = 1 × 2 × …`."""


def _ends_sentence(text: str, end: int, nxt: str) -> bool:
    """Whether the `.`, `!` or `?` run ending before `end` (followed by `nxt`) ends a sentence."""
    if nxt.islower() or nxt in _GOES_ON:  # "e.g. the", "x^3/3! + x^5/5!", "vs. b"
        return False
    if text[:end].count("$") % 2:  # inside a `$…$` formula
        return False
    head = text[:end].rstrip("\"')] ")
    word = head.rsplit(" ", 1)[-1]
    # "Fig. 3", "J. S. Bach"
    return word not in ABBREVIATIONS and not re.fullmatch(r"\(?[A-Z]\.", word)


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`: split after `.`, `!` or `?` and a space, but not after an
    abbreviation or an initial, a factorial (`3! + 1`), a dot before a lower-case word, or
    inside `$…$` (decimals such as 3.14 have no space after the dot)."""
    text = " ".join(text.split())
    out, start = [], 0
    for m in _END.finditer(text):
        if _ends_sentence(text, m.end(), text[m.end() : m.end() + 1]):
            out.append(text[start : m.end()].strip())
            start = m.end()
    out.append(text[start:].strip())
    return [p for p in out if p]


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
            # `--`: a sentence starting with `-` is text, not an option (`-w/path` wrote there)
            [exe, "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", str(part), "--", sentence],
            stdin=subprocess.DEVNULL,
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
