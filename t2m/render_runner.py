"""Runs inside the render sandbox: load one generated module and render its Scene with Manim.

Usage: python -m t2m.render_runner SCENE_FILE QUALITY MEDIA_DIR. On success it writes
MEDIA_DIR/result.json; on failure it prints the traceback (the fixer's input) and exits 1.
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
        with tempconfig(settings):
            scene = scenes[0]()
            scene.render()
            video = scene.renderer.file_writer.movie_file_path
    except Exception:
        lines = traceback.format_exc().splitlines()
        # Frames from the generated file matter most to a fixer; keep them and the error itself.
        print("\n".join(lines[-60:]), file=sys.stderr)
        return 1
    (media_dir / "result.json").write_text(json.dumps({"video": str(video)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
