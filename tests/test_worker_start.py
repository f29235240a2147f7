"""A worker refuses to render where no render jail can be built, and says why; it never renders
unjailed. Where the jail works (here), it serves the render queue."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import worker
from t2m.config import Settings

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


def test_ctrl_c_stops_the_worker_with_130_and_sigterm_with_0(settings: Settings) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "T2M_DATA_DIR": str(settings.data_dir),
        "T2M_TEMPORAL_ADDRESS": settings.temporal_address,
        "T2M_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "T2M_TASK_QUEUE_PREFIX": settings.task_queue_prefix,
    }
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 0)):
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py"), "--queues", "llm"],
            env=env,
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        for line in proc.stderr:  # serving: the signal handlers are in place
            if "worker serving" in line:
                break
        assert thread_nice(proc.pid) == {0, worker.BLOCKING_NICENESS}  # loop 0, blocking work 10
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == code


def thread_nice(pid: int) -> set[int]:
    """The niceness of each of a process's threads (field 19 of /proc/PID/task/TID/stat)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return {int((t / "stat").read_text().rsplit(")", 1)[1].split()[16]) for t in tasks}
