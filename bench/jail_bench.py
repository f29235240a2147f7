"""Jail cost: the same scene rendered with and without the render jail, at -ql and -qm.

Run (as root, like the worker): .venv/bin/python bench/jail_bench.py [REPEATS]. Renders alternate
jailed/unjailed so drift on the machine hits both alike; each render gets a fresh work dir, so
LaTeX is compiled every time in both. The unjailed path is this file's own helper (the product has
none): the same runner, interpreter flags and environment, as a plain child process.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from t2m.render import sandbox

SCENE = """
from manim import *

class Bench(Scene):
    def construct(self):
        title = Text("Jail cost").to_edge(UP)
        eq = MathTex(r"e^{i\\pi} + 1 = 0")
        self.play(Write(title), Create(Circle(radius=2)), run_time=1)
        self.play(Write(eq), run_time=1)
        self.play(FadeOut(eq), run_time=0.5)
"""


async def jailed(quality: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = await sandbox.render(SCENE, quality, Path(tmp), timeout_s=300, cpu_s=300)
        elapsed = time.perf_counter() - start
        assert result.ok, result.error
        return elapsed


def unjailed(quality: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "scene.py").write_text(SCENE)
        env = {**sandbox.jail_env(), "HOME": tmp, "TEXMFOUTPUT": tmp, "TMPDIR": tmp}
        env["XDG_CACHE_HOME"] = f"{tmp}/cache"
        args = ["-I", "-B", "-m", "t2m.render.runner", str(work / "scene.py"), quality]
        start = time.perf_counter()
        subprocess.run([sys.executable, *args, str(work / "media")], cwd=work, env=env, check=True)
        elapsed = time.perf_counter() - start
        assert (work / "media" / "result.json").exists()
        return elapsed


async def main(repeats: int) -> None:
    if os.geteuid() != 0:
        print("note: not root, so the jail runs in bwrap's user-namespace mode")
    await jailed("low")  # warm the page cache for both paths
    for quality in ("low", "medium"):
        with_jail, without = [], []
        for _ in range(repeats):
            with_jail.append(await jailed(quality))
            without.append(unjailed(quality))
        j, u = statistics.median(with_jail), statistics.median(without)
        print(
            f"{quality:6}  jailed {j:5.2f} s  unjailed {u:5.2f} s  "
            f"ratio {j / u:4.2f}  extra {j - u:+.2f} s  (median of {repeats})"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
