"""What keeps `t2m up` up: its children are watched, and one that dies is restarted with backoff.

Each child runs in its own process group (so stopping it stops what it started). A child that
dies is logged and restarted after 0.5 s, 1 s, 2 s … (at most 15 s); one that keeps dying — more
than `MAX_RESTARTS` times within `WINDOW_S` — is a crash loop, and the stack stops with a clear
message instead of spinning. Services that are not our children (the embedded PostgreSQL runs as
a daemon) are watched through a liveness probe and a restart function.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

MAX_RESTARTS = 5
WINDOW_S = 120.0
MAX_BACKOFF_S = 15.0


class CrashLoop(RuntimeError):
    """A component died too often in too short a time; restarting it again would not help."""


class Component:
    """One supervised part of the stack: how to start and stop it, and whether it is alive."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.restarts: deque[float] = deque()

    async def start(self) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop it if it still runs (a no-op for what stops itself)."""

    def backoff_s(self, base_s: float) -> float:
        return min(base_s * 2 ** len(self.restarts), MAX_BACKOFF_S)


class ChildProcess(Component):
    """A child process in its own process group, its output appended to `log`."""

    def __init__(
        self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        super().__init__(name)
        self.cmd, self.log, self.env = cmd, log, env
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self._spawn()

    def _spawn(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                self.cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=self.env,
            )  # fmt: skip

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 20.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Service(Component):
    """Something that is not our child (a daemon), watched through a probe."""

    def __init__(
        self, name: str, start: Callable[[], Awaitable[None]], alive: Callable[[], bool]
    ) -> None:
        super().__init__(name)
        self._start, self._alive = start, alive

    async def start(self) -> None:
        await self._start()

    def alive(self) -> bool:
        return self._alive()


class Supervisor:
    """Components started in order, watched, restarted when they die, stopped in reverse."""

    def __init__(self, log: Callable[[str], None] | None = None, backoff_s: float = 0.5) -> None:
        self.components: list[Component] = []
        self.backoff_s = backoff_s
        self.log = log or (lambda line: print(f"t2m: {line}", file=sys.stderr, flush=True))

    async def add(self, component: Component) -> None:
        await component.start()
        self.components.append(component)

    async def watch(self, stop: asyncio.Event, every_s: float = 0.5) -> None:
        """Until `stop` is set: restart whatever died. Raises CrashLoop when restarts don't help."""
        while not stop.is_set():
            for c in self.components:
                if not c.alive() and not stop.is_set():
                    await self._restart(c, stop)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)

    async def _restart(self, c: Component, stop: asyncio.Event) -> None:
        now = time.monotonic()
        while c.restarts and now - c.restarts[0] > WINDOW_S:
            c.restarts.popleft()
        if len(c.restarts) >= MAX_RESTARTS:
            raise CrashLoop(
                f"{c.name} died {len(c.restarts) + 1} times within {WINDOW_S:.0f} s; stopping"
            )
        delay = c.backoff_s(self.backoff_s)
        self.log(f"{c.name} is down; restarting it in {delay:g} s")
        c.restarts.append(now)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        if stop.is_set():
            return
        c.stop()
        try:
            await c.start()
        except Exception as e:  # the next round sees it still down and backs off further
            self.log(f"{c.name} failed to start: {e}")
            return
        self.log(f"{c.name} restarted")

    def stop(self) -> None:
        for c in reversed(self.components):
            c.stop()
        self.components.clear()
