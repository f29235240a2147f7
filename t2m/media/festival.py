"""Offline narration with Festival and an HTS voice Debian packages (`festival`,
`festvox-us-slt-hts`): voices named `festival:NAME`, spoken in a media jail
(`t2m.media.jailed.festival_speech`; standard library only, since the jail imports it).

One Festival process speaks every sentence of a scene, each to its own WAV, so the cues carry
each sentence's real length (Festival takes ~1.5 s to start, then ~0.1 s a sentence). The
sentences never become code: they are written as string literals to a data file that the driver
reads with `(load FILE t)`, which returns the forms without evaluating them, and each is passed
to `Utterance` as a value. Festival's lexicons are ASCII, so letters are folded to ASCII first
(`Gödel` → `Godel`, `ℝ` → `R`) and what has no ASCII form becomes a space.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PREFIX = "festival:"
SPEED = 0.9
"""HTS_Engine's speech rate: slt speaks ~180 words a minute at 1.0, ~165 at 0.9 (human
narration: ~150-160; bench/voice_bench.py)."""
TIMEOUT_S = 80


@dataclass(frozen=True)
class Voice:
    function: str  # the Scheme function selecting it
    directory: str  # where its package installs it
    package: str  # the Debian package


VOICES = {
    "festival:us_slt": Voice(
        "voice_cmu_us_slt_arctic_hts",
        "/usr/share/festival/voices/us/cmu_us_slt_arctic_hts",
        "festvox-us-slt-hts",
    ),
}
"""Festival voices t2m offers: US English HTS voices (the diphone voices kal and ked crash on
empty or non-Latin input: bench/voice_bench.py)."""


class FestivalFailed(RuntimeError):
    """Festival did not speak every sentence."""


def is_festival_voice(voice: str | None) -> bool:
    return voice is not None and voice.startswith(PREFIX)


def problem(voice: str) -> str | None:
    """Why `voice` cannot be spoken here (unknown, or not installed), or None."""
    known = VOICES.get(voice)
    if known is None:
        return f"unknown voice {voice!r}: Festival voices are {', '.join(sorted(VOICES))}"
    if shutil.which("festival") is None or not os.path.isdir(known.directory):
        return f"voice {voice!r} is not installed: apt-get install festival {known.package}"
    return None


def installed() -> list[str]:
    """The Festival voices this host can speak."""
    return [v for v in sorted(VOICES) if problem(v) is None]


@cache
def engine_version() -> str:
    """What makes the same text sound different (part of a narration's storage key)."""
    exe = shutil.which("festival")
    out = (
        subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
        if exe
        else ""
    )
    found = re.search(r"\d+(?:\.\d+)+", out)
    return f"festival {found.group(0) if found else '?'} speed={SPEED} ascii-fold 1"


def ascii_text(text: str) -> str:
    """`text` as Festival can read it: letters folded to ASCII, a dash made a comma (a pause),
    control characters and what has no ASCII form made spaces, runs of spaces made one."""
    folded = unicodedata.normalize("NFKD", text.replace("\u2014", ", "))
    kept = "".join(
        c if c.isascii() and c.isprintable() else " "
        for c in folded
        if not unicodedata.combining(c)
    )
    return " ".join(kept.split())


def scheme_string(text: str) -> str:
    """`text` (printable ASCII) as a Scheme string literal: backslash and quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def speak(sentences: list[str], voice: str, work: Path) -> list[Path]:
    """Speak each sentence to its own WAV in `work` (created); their paths, in order."""
    known = VOICES[voice]
    work.mkdir(parents=True, exist_ok=True)
    data = work / "sentences.scm"
    data.write_text("\n".join(scheme_string(ascii_text(s)) for s in sentences) + "\n")
    driver = work / "speak.scm"
    driver.write_text(
        f"({known.function})\n"
        f'(set! hts_engine_params (append hts_engine_params \'(("-r" {SPEED}))))\n'
        "(set! t2m_i 0)\n"
        "(mapcar\n"
        " (lambda (s)\n"
        "   (utt.save.wave (utt.synth (eval (list 'Utterance 'Text s)))\n"
        '                  (format nil "part-%d.wav" t2m_i) \'riff)\n'
        "   (set! t2m_i (+ t2m_i 1)))\n"
        f' (load "{data.name}" t))\n'
    )
    exe = shutil.which("festival") or "festival"
    try:
        proc = subprocess.run(
            [exe, "--batch", driver.name],
            cwd=work,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise FestivalFailed(f"Festival took more than {TIMEOUT_S} s") from None
    parts = [work / f"part-{i}.wav" for i in range(len(sentences))]
    if proc.returncode != 0 or not all(p.is_file() for p in parts):
        said = proc.stderr.decode(errors="replace").strip()[-300:]
        raise FestivalFailed(f"Festival failed (status {proc.returncode}): {said}")
    return parts
