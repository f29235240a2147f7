"""Runs inside the render jail (`t2m.jail`), as an unprivileged uid with the work dir at /job: load
one generated module and render its Scene with Manim. Everything it writes is the attacker's to
change, so the worker distrusts result.json (see `sandbox._read_result`).

Usage: python -m t2m.render_runner SCENE_FILE QUALITY MEDIA_DIR [MIN_SECONDS]. The scene lasts at
least MIN_SECONDS (its narration's length): a shorter one ends holding its last frame. On success
it writes
MEDIA_DIR/result.json (the video's path and the layout check's findings, taken after every
animation); on failure it prints the traceback (the fixer's input) and exits 1.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
from pathlib import Path

QUALITY = {
    "low": "low_quality",
    "medium": "medium_quality",
    "high": "high_quality",
    "ultra": "fourk_quality",
}


def main(argv: list[str]) -> int:
    scene_file, quality, media_dir = Path(argv[0]), argv[1], Path(argv[2])
    min_seconds = float(argv[3]) if len(argv) > 3 else 0.0
    from manim import Scene, tempconfig

    try:
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
            "verbosity": "ERROR",
            "progress_bar": "none",
            "write_to_movie": True,
        }
        findings: list[str] = []
        with tempconfig(settings):
            scene = _checked(scenes[0], findings, min_seconds)()
            scene.render()
            video = scene.renderer.file_writer.movie_file_path
    except Exception:
        lines = traceback.format_exc().splitlines()
        # Frames from the generated file matter most to a fixer; keep them and the error itself.
        print("\n".join(lines[-60:]), file=sys.stderr)
        return 1
    (media_dir / "result.json").write_text(json.dumps({"video": str(video), "layout": findings}))
    return 0


def _checked(scene_class: type, findings: list[str], min_seconds: float) -> type:
    """The generated Scene, with the layout check after each `play` (first report of each
    finding kept, naming the animation it follows), lasting at least `min_seconds`."""
    from manim import config

    from t2m import layout

    class Checked(scene_class):
        def play(self, *args, **kwargs):
            result = super().play(*args, **kwargs)
            self._t2m_animations = getattr(self, "_t2m_animations", 0) + 1
            if not hasattr(self.camera, "frame"):  # a moving camera has no fixed frame to judge
                seen = {f.split(": ", 1)[1] for f in findings}
                for finding in layout.check(self.mobjects, config.frame_width, config.frame_height):
                    if finding not in seen and len(findings) < layout.MAX_FINDINGS:
                        findings.append(f"after animation {self._t2m_animations}: {finding}")
            return result

        def construct(self):
            super().construct()
            short = min_seconds - self.renderer.time
            if short > 0.01:  # hold the last frame while the narration finishes
                self.wait(short)

    Checked.__name__ = Checked.__qualname__ = scene_class.__name__
    return Checked


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
