"""The offline templates keep the bottom band of the frame free for subtitles: every scene of the
eleven offline-quality topics (and the plain fallback) is run with Manim's dry run (construct runs,
no frame is drawn), and after each animation nothing on screen reaches into the lowest 15 %."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from t2m.authoring.llm.offline.code import fallback_code
from tests.test_offline_quality import TOPICS, author

pytestmark = pytest.mark.render  # Manim runs every scene (LaTeX included): minutes on 2 cores
BAND = 0.15
"""Share of the frame's height, at the bottom, where players draw subtitles."""


def lowest_on_screen(code: str, media_dir: Path) -> tuple[float, float]:
    """(the lowest y anything on screen reaches after any animation, the band's top y)."""
    from manim import DOWN, Scene, config, tempconfig

    namespace: dict = {"__name__": "offline_scene"}
    exec(compile(code, "scene.py", "exec"), namespace)  # t2m's own template code
    scene_class = next(
        v
        for v in namespace.values()
        if isinstance(v, type) and issubclass(v, Scene) and v.__module__ == "offline_scene"
    )
    lowest = [float("inf")]

    class Measured(scene_class):  # type: ignore[misc, valid-type]
        def play(self, *args, **kwargs):
            super().play(*args, **kwargs)
            for m in self.mobjects:
                if m.has_points() or m.submobjects:
                    lowest[0] = min(lowest[0], float(m.get_critical_point(DOWN)[1]))

    quiet = {"verbosity": "ERROR", "progress_bar": "none", "quality": "low_quality"}
    # No play-call hashes: nothing is written, so they buy nothing (they were a third of the time).
    with tempconfig(
        {"dry_run": True, "disable_caching": True, "media_dir": str(media_dir), **quiet}
    ):
        Measured().render()
        band_top = -config.frame_height / 2 + BAND * config.frame_height
    assert lowest[0] < float("inf"), "nothing was drawn"
    return lowest[0], band_top


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.topic)
def test_nothing_is_drawn_in_the_subtitle_band(topic, tmp_path: Path) -> None:
    authored = asyncio.run(author(topic))
    codes = authored.codes + [fallback_code(authored.plan.scenes[0].model_dump(), "Scene1")]
    for i, code in enumerate(codes):
        lowest, band_top = lowest_on_screen(code, tmp_path)
        assert lowest >= band_top, f"scene {i + 1} draws down to y={lowest:.2f} < {band_top:.2f}"
