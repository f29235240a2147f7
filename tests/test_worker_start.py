"""A worker refuses to render where no render jail can be built, and says why; it never renders
unjailed. Where the jail works (here), it serves the render queue."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import worker

ROOT = Path(__file__).resolve().parent.parent


async def test_the_jail_works_here_so_the_render_queue_is_served() -> None:
    assert await worker.jail_ready(["video", "render"]) == ["video", "render"]


def test_without_bubblewrap_the_worker_refuses_to_render(tmp_path: Path) -> None:
    empty = tmp_path / "bin"  # a PATH without bwrap
    empty.mkdir()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "worker.py"), "--queues", "render"],
        env={"PATH": str(empty), "T2M_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 1
    assert "refusing to serve the render queue" in proc.stderr
    assert "bubblewrap (`bwrap`) is not installed" in proc.stderr
