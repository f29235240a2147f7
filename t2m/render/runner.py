"""Runs inside the render jail (`t2m.jail.bwrap`), as an unprivileged uid with the work dir at /job: load
one generated module and render its Scene with Manim. Everything it writes is the attacker's to
change, so the worker distrusts result.json (see `sandbox._read_result`).

Usage: python -m t2m.render.runner SCENE_FILE QUALITY MEDIA_DIR [MIN_SECONDS [CLASS_NAME [SPAN]]].
It renders the Scene subclass named CLASS_NAME, or when there is none by that name the only (else the
first) Scene subclass of the file. The scene lasts at least MIN_SECONDS (its narration's length): a
shorter one ends holding its last frame, and a still scene (no animation) is held that long, or
STILL_SECONDS without narration. On success it writes MEDIA_DIR/result.json (the video's path and
the layout check's findings, taken after every animation); on failure it prints the traceback (the
fixer's input) with a plain reason where one is known, and exits 1. After every animation it
rewrites MEDIA_DIR/progress.json (animations played, seconds of video), so that a render killed
for time can say how far it got.

SPAN `FIRST,LAST` writes only animations FIRST..LAST (from 0, inclusive; the padding wait counts
as the last animation): the earlier ones are played without writing frames, the layout check
judges only the written ones, and the padding is computed from frame counts, so each range is
exactly its part of the whole render (`t2m.render.split`). SPAN `plan` writes no video: the dry pass,
MEDIA_DIR/plan.json with each animation's frame count and whether any mobject had an updater.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import sys
import traceback
from pathlib import Path

import numpy as np

STILL_SECONDS = 1.0
"""How long a scene with no animation and no narration is held."""
SEED = 0
"""Of `random` and NumPy's global generator, for the scene module and each Scene: a scene drawing
random dots draws the same ones in its dry pass and in every range of a split render (Manim
seeds from the OS when it has no seed), so the ranges join into the whole render's picture."""
QUALITY = {
    "low": "low_quality",
    "medium": "medium_quality",
    "high": "high_quality",
    "ultra": "fourk_quality",
}


def main(argv: list[str]) -> int:
    scene_file, quality, media_dir = Path(argv[0]), argv[1], Path(argv[2])
    min_seconds = float(argv[3]) if len(argv) > 3 else 0.0
    wanted = argv[4] if len(argv) > 4 else ""
    span = argv[5] if len(argv) > 5 else ""
    from manim import Scene, tempconfig

    from t2m.media.encoding import X264_OPTIONS

    try:
        random.seed(SEED)
        np.random.seed(SEED)  # the global generator: what scene code calls
        spec = importlib.util.spec_from_file_location("generated_scene", scene_file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        scenes = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, Scene)
            and obj.__module__ == module.__name__
        ]
        if not scenes:
            print("Error: the code defines no subclass of manim.Scene", file=sys.stderr)
            return 1
        settings = {
            "quality": QUALITY[quality],
            "media_dir": str(media_dir),
            "output_file": "scene",
            "disable_caching": True,
            "seed": SEED,
            "verbosity": "ERROR",
            "progress_bar": "none",
            "write_to_movie": span != "plan",
            "video_encoder_options": X264_OPTIONS,
            **_span_settings(span),
        }
        findings: list[str] = []
        media_dir.mkdir(parents=True, exist_ok=True)  # the dry pass writes no video to make it
        with tempconfig(settings):
            scene = _checked(_pick(scenes, wanted), findings, min_seconds, media_dir)()
            scene.render()
            video = scene.renderer.file_writer.movie_file_path
        if span == "plan":
            plan = {"frames": scene._t2m_frames, "updaters": scene._t2m_updaters}
            (media_dir / "plan.json").write_text(json.dumps(plan))
            return 0
    except Exception as e:
        lines = traceback.format_exc().splitlines()
        # Frames from the generated file matter most to a fixer; keep them and the error itself.
        print("\n".join(lines[-60:]), file=sys.stderr)
        reason = _reason(e)
        if reason:
            print(reason, file=sys.stderr)
        return 1
    if not video or not Path(video).is_file():
        print(
            "Error: the scene played no animation, so Manim wrote no video "
            "(add at least one self.play(...) or self.wait(...))",
            file=sys.stderr,
        )
        return 1
    from t2m.media import probe as media_probe

    try:  # the check the worker makes again outside, here for a clear message to the fixer
        media_probe.check(Path(video), quality, media_probe.max_seconds(min_seconds))
    except media_probe.BadVideo as e:
        print(f"Error: the render's video was refused: {e}", file=sys.stderr)
        return 1
    (media_dir / "result.json").write_text(json.dumps({"video": str(video), "layout": findings}))
    return 0


PLAN_SKIP = 10**9
"""`from_animation_number` of the dry pass: every animation is played without writing frames."""


def _span_settings(span: str) -> dict[str, int]:
    """Manim's animation range (`-n FIRST,LAST`) for SPAN."""
    if span == "plan":
        return {"from_animation_number": PLAN_SKIP}
    if not span:
        return {}
    first, last = (int(x) for x in span.split(","))
    return {"from_animation_number": first, "upto_animation_number": last}


def _frames(scene: object, run_time: float) -> int:
    """The frames Manim writes for the animation just played, whether or not it was skipped: a
    static wait is frozen for int(run_time / dt) frames, anything else sampled every dt from 0."""
    from manim import config

    dt = 1 / config.frame_rate
    if scene.is_current_animation_frozen_frame():  # type: ignore[attr-defined]
        return int(run_time / dt)
    return len(np.arange(0, run_time, dt))


def _pick(scenes: list[type], wanted: str) -> type:
    """The Scene subclass named `wanted`; else the only one, else the first that no other scene
    of the file extends (a helper base class is not the scene), else the first."""
    for cls in scenes:
        if cls.__name__ == wanted:
            return cls
    leaves = [c for c in scenes if not any(o is not c and issubclass(o, c) for o in scenes)]
    return (leaves or scenes)[0]


def _reason(e: BaseException) -> str:
    """A plain reason for errors whose traceback alone misleads (empty when it says enough)."""
    if isinstance(e, ModuleNotFoundError) and e.name:
        top = e.name.split(".")[0]
        if top.startswith("manim_") or top.startswith("manim."):
            return (
                f"Error: plugin {top} is not installed: only manim itself is available, "
                "draw it with manim's own objects"
            )
        return f"Error: module {top} is not installed"
    return ""


def _checked(scene_class: type, findings: list[str], min_seconds: float, media_dir: Path) -> type:
    """The generated Scene, with the layout check after each `play` (first report of each
    finding kept, naming the animation it follows), lasting at least `min_seconds` (a still
    scene at least STILL_SECONDS), reporting its progress to MEDIA_DIR/progress.json."""
    from manim import ThreeDCamera, config

    from t2m.render import layout_check as layout

    def in_3d(camera: object) -> bool:
        return isinstance(camera, ThreeDCamera)

    class Checked(scene_class):
        _t2m_frames: list[int]
        _t2m_updaters = False

        def play(self, *args, **kwargs):
            result = super().play(*args, **kwargs)
            frames = getattr(self, "_t2m_frames", [])
            self._t2m_frames = [*frames, _frames(self, self.duration)]
            self._t2m_animations = len(self._t2m_frames)
            seconds = sum(self._t2m_frames) / config.frame_rate
            progress = {"animations": self._t2m_animations, "seconds": seconds}
            (media_dir / "progress.json").write_text(json.dumps(progress))
            self._t2m_updaters |= any(m.get_family_updaters() for m in self.mobjects)
            if self.renderer.skip_animations:  # not written here: another range judges it
                return result
            if not hasattr(self.camera, "frame"):  # a moving camera has no fixed frame to judge
                seen = {f.split(": ", 1)[1] for f in findings}
                # A 3D scene is judged where its points are drawn: projected by its camera.
                project = self.camera.transform_points_pre_display if in_3d(self.camera) else None
                for finding in layout.check(
                    self.mobjects, config.frame_width, config.frame_height, project=project
                ):
                    if finding not in seen and len(findings) < layout.MAX_FINDINGS:
                        findings.append(f"after animation {self._t2m_animations}: {finding}")
            return result

        def construct(self):
            super().construct()
            short = min_seconds - sum(getattr(self, "_t2m_frames", [])) / config.frame_rate
            if self.renderer.num_plays == 0:  # a still: Manim would write a PNG, not a video
                short = max(short, STILL_SECONDS)
            if short > 0.01:  # hold the last frame while the narration finishes, whole frames
                self.wait(math.ceil(short * config.frame_rate - 1e-6) / config.frame_rate)

    Checked.__name__ = Checked.__qualname__ = scene_class.__name__
    return Checked


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Every file is closed and the encoder threads joined by now; tearing Manim's modules down
    # would cost the render (and each range, and the dry pass) ~0.8 s of wall for nothing.
    os._exit(status)
