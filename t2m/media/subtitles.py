"""Subtitles as broadcasters make them: a cue is at most 2 lines of at most 42 characters and at
most 7 s on screen, split at phrase boundaries, timed to the narration.

Narration cues come one per spoken sentence (up to 14 s and 200+ characters: three lines over
the picture). Each is cut into pieces that fit, at the best place a reader would pause (after a
comma, before "and", "which"…, else between words), and each piece gets the share of the
sentence's audio time its characters take (speech runs at a steady rate within a sentence).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from t2m.vocabulary.plan import Cue

MAX_LINE = 42
MAX_LINES = 2
MAX_CUE_S = 7.0
_PAUSE_AFTER = (",", ";", ":", "—", "–", ")")
_PAUSE_BEFORE = {
    "and", "but", "or", "nor", "so", "yet", "because", "which", "that", "who", "whose", "where",
    "when", "while", "if", "then", "than", "as", "with", "without", "for", "from", "to", "into",
    "of", "in", "on", "by", "after", "before", "since", "until", "although", "though", "whereas",
}  # fmt: skip


def _words(text: str) -> list[str]:
    """The words, a word longer than a line cut into line-sized pieces."""
    out: list[str] = []
    for word in text.split():
        out += [word[i : i + MAX_LINE] for i in range(0, len(word), MAX_LINE)]
    return out


def _pause(words: Sequence[str], i: int) -> int:
    """How good a break before words[i] is: 2 after punctuation, 1 before a linking word."""
    if i <= 0 or i >= len(words):
        return 0
    if words[i - 1].endswith(_PAUSE_AFTER):
        return 2
    return 1 if words[i].lower().strip("\"'(") in _PAUSE_BEFORE else 0


def lines(words: Sequence[str]) -> list[str] | None:
    """The words on at most two lines of at most MAX_LINE characters, broken where the lines are
    most even (a phrase boundary wins a near tie); None if they do not fit."""
    text = " ".join(words)
    if len(text) <= MAX_LINE:
        return [text]
    best: tuple[float, int] | None = None
    for i in range(1, len(words)):
        a, b = " ".join(words[:i]), " ".join(words[i:])
        if len(a) <= MAX_LINE and len(b) <= MAX_LINE:
            cost = abs(len(a) - len(b)) - 6 * _pause(words, i)
            if best is None or cost < best[0]:
                best = (cost, i)
    if best is None:
        return None
    return [" ".join(words[: best[1]]), " ".join(words[best[1] :])]


def _chunks(words: list[str], max_chars: int) -> list[list[str]]:
    """Consecutive pieces that each fit two lines and `max_chars`, cut at the best pause."""
    pieces: list[list[str]] = []
    start = 0
    while start < len(words):
        end = start + 1
        while end < len(words):
            trial = words[start : end + 1]
            if lines(trial) is None or len(" ".join(trial)) > max_chars:
                break
            end += 1
        if end < len(words):  # back up to a pause in the second half of the piece, if any
            half = start + max(1, (end - start) // 2)
            pauses = [(_pause(words, i), i) for i in range(half, end + 1)]
            score, at = max(pauses)
            if score > 0:
                end = at
        pieces.append(words[start:end])
        start = end
    return pieces


def split_cue(cue: Cue) -> list[Cue]:
    """`cue` as broadcast-sized cues over the same time span."""
    words = _words(cue.text)
    if not words:
        return []
    text = " ".join(words)
    duration = max(cue.end - cue.start, 0.0)
    # characters that fit in MAX_CUE_S at this sentence's speaking rate (a margin for rounding)
    per_s = len(text) / duration if duration > 0 else math.inf
    max_chars = max(1, math.floor((MAX_CUE_S - 0.05) * per_s)) if duration > MAX_CUE_S else 10**9
    pieces = _chunks(words, max_chars)
    total = sum(len(" ".join(p)) for p in pieces)
    out, done = [], 0
    for piece in pieces:
        body = " ".join(piece)
        start = cue.start + duration * done / total
        done += len(body)
        end = cue.start + duration * done / total
        end = min(end, start + MAX_CUE_S)  # one word held longer (a pause): off after 7 s
        out.append(
            Cue(start=round(start, 3), end=round(end, 3), text="\n".join(lines(piece) or [body]))
        )
    return out


def broadcast(cues: Sequence[Cue]) -> list[Cue]:
    """Every cue split to the rules (see the module doc)."""
    return [piece for cue in cues for piece in split_cue(cue)]
