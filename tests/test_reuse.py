"""What makes two requests the same video (the whole-result cache's key)."""

from __future__ import annotations

from t2m.catalog.reuse import fingerprint
from t2m.vocabulary.request import VideoRequest


def request(**fields: object) -> VideoRequest:
    base = {"topic": "Pythagorean Theorem", "owner": "alice", "model": "offline/templates"}
    return VideoRequest.model_validate(base | fields)


def test_the_same_request_written_differently_is_the_same_video() -> None:
    one = request(context="In a right triangle,  a^2 + b^2 = c^2.")
    other = request(
        topic="  pythagorean   THEOREM ", context="In a right triangle, a^2 + b^2 = c^2."
    )
    assert fingerprint(one) == fingerprint(other.model_copy(update={"owner": "bob"}))


def test_what_shapes_the_video_changes_the_fingerprint() -> None:
    base = fingerprint(request())
    for change in (
        {"context": "Another context."},
        {"quality": "high"},
        {"voice": "none"},
        {"style_preferences": {"theme": "light"}},
        {"max_cost_usd": 0.5},
    ):
        assert fingerprint(request(**change)) != base, change
