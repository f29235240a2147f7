"""A render's cache key names everything that makes its bytes: ranges of one split scene are joined
by packet copy, so a range cached by a worker with another encoder build must not be met there."""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest

import t2m.keys


def test_a_render_key_names_the_encoder_build(monkeypatch: pytest.MonkeyPatch) -> None:
    here = t2m.keys.render_key("class S(Scene): ...", "low", 3.0, "S", "0,2")
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "0.0-other" if name == "av" else real(name)
    )
    try:
        other_image = importlib.reload(t2m.keys).render_key(
            "class S(Scene): ...", "low", 3.0, "S", "0,2"
        )
    finally:
        monkeypatch.undo()
        importlib.reload(t2m.keys)
    assert other_image != here
    assert t2m.keys.render_key("class S(Scene): ...", "low", 3.0, "S", "0,2") == here
