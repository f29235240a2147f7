"""A split render against a whole one: one 1080p60 scene of 10 animations (15 s of video), made
whole on one render slot, then split over 2 slots (dry pass, 2 ranges at once, join), through
the same activities a worker runs. Prints wall(split) / wall(whole); goal <= 0.6 on 2 cores.

Run: .venv/bin/python bench/split_bench.py   (as root, like the worker; ~1 minute on 2 idle cores)
Also one figure of bench/pipeline_bench.py.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from temporalio.testing import ActivityEnvironment
from tree_cpu import TreeCPU

from activities.media import MediaActivities, min_seconds
from activities.messages import JoinRequest, RenderRequest
from activities.split import SplitActivities
from t2m.catalog.storage import LocalStorage
from t2m.config import Settings
from t2m.render import split

SCENE = """from manim import *

class Scene1(Scene):
    def construct(self):
        shapes = VGroup(*[RegularPolygon(n, color=c).scale(0.8) for n, c in
                          zip(range(3, 8), [BLUE, RED, GREEN, YELLOW, PURPLE])])
        shapes.arrange(RIGHT, buff=0.4)
        title = Text("Ten animations at 1080p60").to_edge(UP)
        self.play(Write(title), run_time=1.5)
        for shape in shapes:
            self.play(Create(shape), run_time=1.5)
        self.play(shapes.animate.rotate(PI / 2), run_time=1.5)
        self.play(shapes.animate.arrange(DOWN, buff=0.2).scale(0.5), run_time=1.5)
        self.play(FadeOut(title), shapes.animate.set_color(WHITE), run_time=1.5)
        self.play(Indicate(shapes), run_time=1.5)
"""


def load_average() -> float:
    """The 1-minute load average: renders run at nice 19, so on a busy host they get only the
    CPU others leave and a figure means little without it."""
    return os.getloadavg()[0]


async def split_over_two_slots() -> dict[str, float]:
    """Walls (s) of the whole render on one slot, of the split render over two, and of the
    split's phases (dry pass, the ranges at once, the join); the load average before and after;
    and where this process can have a cgroup of its own (root), the CPU seconds of the whole
    and of the split render, jails included, and `floor`: split CPU / (2 cores × the whole's
    wall), the least split / whole any schedule of that CPU on 2 cores could reach."""
    load_before = load_average()
    meter = TreeCPU.open(os.getpid())
    try:
        walls = await _split_over_two_slots(meter)
    finally:
        if meter is not None:
            meter.leave(os.getpid())
            meter.close()
    return walls | {"load before": load_before, "load after": load_average()}


async def _split_over_two_slots(meter: TreeCPU | None) -> dict[str, float]:
    def cpu() -> float:
        return meter.seconds() if meter is not None else 0.0

    with tempfile.TemporaryDirectory(prefix="t2m-split-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", render_slots=2, split_min_range_s=0)
        req = RenderRequest(
            job_id="bench", scene_index=0, code=SCENE, quality="high", class_name="Scene1"
        )
        cpu_start, start = cpu(), time.perf_counter()
        whole_store = LocalStorage(Path(tmp) / "whole")
        whole = await ActivityEnvironment().run(
            MediaActivities(settings, whole_store).render_scene, req
        )
        whole_s, whole_cpu = time.perf_counter() - start, cpu() - cpu_start
        assert whole.ok, whole.error
        store = LocalStorage(Path(tmp) / "split")
        media = MediaActivities(settings, store)
        cpu_start, start = cpu(), time.perf_counter()
        plan = await split.plan(
            SCENE, "high", Path(tmp) / "plan", timeout_s=300, cpu_s=600,
            min_seconds=min_seconds(0.0), scene_class="Scene1",
        )  # fmt: skip
        assert isinstance(plan, split.Plan), plan
        spans = split.choose_ranges(plan, "high", 2, 0.0)
        planned = time.perf_counter()
        parts = await asyncio.gather(
            *(
                ActivityEnvironment().run(media.render_scene, req.model_copy(update={"span": s}))
                for s in spans
            )
        )
        rendered = time.perf_counter()
        joined = await ActivityEnvironment().run(
            SplitActivities(settings, store).join_renders, JoinRequest(render=req, parts=parts)
        )
        end, split_cpu = time.perf_counter(), cpu() - cpu_start
        assert joined.ok and abs(joined.duration_s - whole.duration_s) < 1e-6
        walls = {
            "whole": whole_s,
            "split": end - start,
            "dry pass": planned - start,
            "ranges": rendered - planned,
            "join": end - rendered,
        }
        if meter is None:
            return walls
        floor = split_cpu / (2 * whole_s)
        return walls | {"whole cpu": whole_cpu, "split cpu": split_cpu, "floor": floor}


if __name__ == "__main__":
    walls = asyncio.run(split_over_two_slots())
    phases = ("whole", "split", "dry pass", "ranges", "join")
    print(", ".join(f"{k} {walls[k]:.1f} s" for k in phases))
    ratio = walls["split"] / walls["whole"]
    load = f"load average {walls['load before']:.2f} -> {walls['load after']:.2f}"
    print(f"split over 2 render slots / whole on 1 (1080p60, 10 animations) {ratio:.3f} ({load})")
    if "floor" in walls:
        print(
            f"CPU: whole {walls['whole cpu']:.1f} s ({walls['whole cpu'] / walls['whole']:.2f}"
            f" cores busy), split {walls['split cpu']:.1f} s; the least split / whole that CPU"
            f" allows on 2 cores: {walls['floor']:.3f}"
        )
