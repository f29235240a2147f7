"""`t2m up` supervises: a dead part is restarted with backoff; a crash loop stops the stack;
stopping is TERM then KILL after a child's limit; nothing outlives a killed `t2m up`."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.supervisor import MAX_RESTARTS, ChildProcess, CrashLoop, Service, Supervisor
from tests.helpers import gone, started


async def test_a_dead_child_is_restarted_and_logged(tmp_path: Path) -> None:
    lines: list[str] = []
    sup = Supervisor(log=lines.append, backoff_s=0.01)
    child = ChildProcess("sleeper", ["sleep", "60"], tmp_path / "sleeper.log")
    await sup.add(child)
    first = child.process
    assert first is not None
    stop = asyncio.Event()
    watching = asyncio.create_task(sup.watch(stop, every_s=0.05))
    first.kill()
    for _ in range(100):
        if child.process is not first and child.alive():
            break
        await asyncio.sleep(0.05)
    assert child.process is not first and child.alive()
    assert lines == ["sleeper is down; restarting it in 0.01 s", "sleeper restarted"]
    stop.set()
    await watching
    sup.stop()
    assert child.process is not None and child.process.poll() is not None


async def test_a_crash_loop_stops_the_stack_with_a_clear_message(tmp_path: Path) -> None:
    sup = Supervisor(log=lambda _: None, backoff_s=0.001)
    await sup.add(ChildProcess("flaky", ["false"], tmp_path / "flaky.log"))
    with pytest.raises(CrashLoop, match=f"flaky died {MAX_RESTARTS + 1} times within"):
        await asyncio.wait_for(sup.watch(asyncio.Event(), every_s=0.01), timeout=10)
    sup.stop()


async def test_a_service_that_fails_to_restart_is_retried(tmp_path: Path) -> None:
    state = {"up": False, "starts": 0}

    async def start() -> None:
        state["starts"] += 1
        if state["starts"] == 2:
            raise OSError("port still in use")
        state["up"] = True

    lines: list[str] = []
    sup = Supervisor(log=lines.append, backoff_s=0.001)
    await sup.add(Service("db", start, alive=lambda: state["up"]))
    state["up"] = False  # it died
    stop = asyncio.Event()
    watching = asyncio.create_task(sup.watch(stop, every_s=0.01))
    for _ in range(200):
        if state["up"]:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await watching
    assert state == {"up": True, "starts": 3}
    assert "db failed to start: port still in use" in lines


PARENT = """
import asyncio, signal, subprocess, sys, time
from pathlib import Path
from cli.supervisor import ChildProcess, Guard

guard = Guard()
child = ChildProcess("sleeper", ["sleep", "600"], Path(sys.argv[1]))
asyncio.run(child.start())
daemon = subprocess.run(  # like pg_ctl: the daemon is left running under init
    ["sh", "-c", "setsid sleep 600 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True
)
pid = int(daemon.stdout)
guard.watch("daemon", pid, signal.SIGTERM)
print(child.process.pid, pid, flush=True)
time.sleep(600)
"""


async def test_children_and_guarded_daemons_do_not_outlive_a_killed_parent(
    tmp_path: Path,
) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "sleeper.log")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert parent.stdout is not None
    child, daemon = map(int, (await asyncio.to_thread(parent.stdout.readline)).split())
    pids = {child: started(child), daemon: started(daemon)}
    assert None not in pids.values()
    parent.kill()  # SIGKILL: no chance to clean up
    parent.wait()
    assert await gone(pids, timeout_s=5) == []


async def test_stopping_waits_for_the_child_then_kills_it_or_at_once_when_forced(
    tmp_path: Path,
) -> None:
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(600)",
    ]
    for force_after_s, took in ((None, (1.0, 3.0)), (0.2, (0.2, 0.8))):
        log = tmp_path / f"stubborn-{force_after_s}.log"
        lines: list[str] = []
        sup = Supervisor(log=lines.append)
        child = ChildProcess("stubborn", stubborn, log, stop_timeout_s=1.0)
        await sup.add(child)
        while "ready" not in log.read_text():
            await asyncio.sleep(0.02)
        force = asyncio.Event()
        if force_after_s is not None:
            asyncio.get_running_loop().call_later(force_after_s, force.set)
        start = time.monotonic()
        await sup.stop_async(force)
        assert took[0] <= time.monotonic() - start < took[1]
        assert child.process is not None and child.process.returncode == -signal.SIGKILL
        assert lines == ["killing stubborn"]

    polite = ChildProcess("polite", ["sleep", "600"], tmp_path / "polite.log", stop_timeout_s=30)
    sup = Supervisor(log=lines.append)
    await sup.add(polite)
    start = time.monotonic()
    await sup.stop_async(asyncio.Event())
    assert time.monotonic() - start < 1
    assert polite.process is not None and polite.process.returncode == -signal.SIGTERM
