"""Subtitle cues as broadcasters make them (t2m/media/subtitles.py); the files of real jobs are checked
in tests/test_cli.py."""

from __future__ import annotations

import random

from t2m.media import compose as media
from t2m.media.subtitles import broadcast
from t2m.vocabulary.plan import Cue
from tests.media_checks import assert_broadcast_subtitles

LONG = (
    "The Pythagorean theorem states that in a right triangle, the square of the length of the"
    " hypotenuse is equal to the sum of the squares of the lengths of the other two sides, which"
    " we write as a squared plus b squared equals c squared."
)


def test_a_long_sentence_is_split_at_phrase_boundaries_and_timed_within_it() -> None:
    cues = broadcast([Cue(start=2.0, end=16.0, text=LONG), Cue(start=16.5, end=17.5, text="Ok.")])
    assert len(cues) >= 3
    assert " ".join(c.text.replace("\n", " ") for c in cues[:-1]) == LONG  # nothing lost
    assert cues[0].start == 2.0 and cues[-2].end == 16.0 and cues[-1].text == "Ok."
    assert all(a.end == b.start for a, b in zip(cues[:-2], cues[1:-1], strict=True))
    ends = [c.text.replace("\n", " ") for c in cues[:-2]]
    assert sum(e.endswith(",") or e.split()[-1] in ("that",) for e in ends) >= 1  # at a pause
    for cue in cues:
        assert cue.end - cue.start <= 7.0
        assert len(cue.text.split("\n")) <= 2 and all(len(r) <= 42 for r in cue.text.split("\n"))
    assert_broadcast_subtitles(media.to_srt(cues))
    assert_broadcast_subtitles(media.to_vtt(cues))


def test_any_text_fits_the_rules() -> None:
    rng = random.Random(7)
    words = ["a", "an", "triangle", "hypotenuse,", "and", "which", "x" * 50, "equals", "sum;"]
    for _ in range(300):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 60)))
        start = rng.uniform(0, 100)
        cue = Cue(start=start, end=start + rng.uniform(0.1, 30), text=text)
        pieces = broadcast([cue])
        assert assert_broadcast_subtitles(media.to_srt(pieces)) == len(pieces)
        assert abs(pieces[0].start - cue.start) < 2e-3 and pieces[-1].end <= cue.end + 2e-3


def test_the_checker_catches_what_the_rules_forbid() -> None:
    import pytest

    with pytest.raises(AssertionError):
        assert_broadcast_subtitles(media.to_srt([Cue(start=0, end=14, text=LONG)]))
