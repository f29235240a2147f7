"""`t2m up` supervises: a dead part is restarted with backoff; a crash loop stops the stack."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cli.supervisor import MAX_RESTARTS, ChildProcess, CrashLoop, Service, Supervisor


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
