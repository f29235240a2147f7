"""What keeps `t2m up` up: its children are watched, and one that dies is restarted with backoff.

A child that dies is logged and restarted after 0.5 s, 1 s, 2 s … (at most 15 s); one that keeps
dying — more than `MAX_RESTARTS` times within `WINDOW_S` — is a crash loop, and the stack stops
with a clear message instead of spinning. Services that are not our children (the embedded
PostgreSQL runs as a daemon) are watched through a liveness probe and a restart function.

Each child runs in its own process group (so stopping it stops what it started): it gets SIGTERM,
then, once its own stop limit has passed (the worker's is its drain limit), SIGKILL. Nothing
outlives `t2m up`, even when it is SIGKILLed: each child is started with a parent-death signal
(Linux `PR_SET_PDEATHSIG`), and daemons (the postmaster, which `pg_ctl` leaves running under
init) are stopped by a guard process that waits for `t2m up`'s end of a pipe to close.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

from t2m.errors import T2mError

MAX_RESTARTS = 5
WINDOW_S = 120.0
MAX_BACKOFF_S = 15.0
STOP_TIMEOUT_S = 20.0
"""How long a child has to exit after SIGTERM before it is SIGKILLed (unless it says otherwise)."""
PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
"""Looked up here, not in the forked child, where only async-signal-safe work belongs."""


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel send `sig` to the child when this process dies,
    however it dies (SIGKILL included). The setting survives exec (not of a setuid program)."""
    if _prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        _prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # it died before prctl: nobody would send `sig` now
            os.kill(os.getpid(), sig)

    return preexec


class CrashLoop(T2mError, RuntimeError):
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
        self,
        name: str,
        cmd: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        stop_timeout_s: float = STOP_TIMEOUT_S,
    ) -> None:
        super().__init__(name)
        self.cmd, self.log, self.env = cmd, log, env
        self.stop_timeout_s = stop_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self._spawn()

    def _spawn(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                self.cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=self.env,
                preexec_fn=die_with_parent(),
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    async def stop_async(self, force: asyncio.Event, log: Callable[[str], None]) -> None:
        """SIGTERM, then SIGKILL after `stop_timeout_s` or as soon as `force` is set; the event
        loop keeps running meanwhile (a second Ctrl-C must be heard)."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        start = time.monotonic()
        told = False
        while proc.poll() is None and not force.is_set():
            waited = time.monotonic() - start
            if waited >= self.stop_timeout_s:
                break
            if waited > 2 and not told:
                left = self.stop_timeout_s - waited
                log(f"waiting up to {left:.0f} s more for {self.name} (Ctrl-C again to kill it)")
                told = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(force.wait(), timeout=0.1)
        if proc.poll() is None:
            log(f"killing {self.name}")
            self.kill()

    def kill(self) -> None:
        proc = self.process
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
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

    async def stop_async(self, force: asyncio.Event) -> None:
        """`stop()`, waiting for each child without blocking the loop: `force` kills at once."""
        for c in reversed(self.components):
            if isinstance(c, ChildProcess):
                await c.stop_async(force, self.log)
            else:
                c.stop()
        self.components.clear()


GUARD = """
import os, signal, sys, time
def started(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None
targets = {}
for line in sys.stdin:
    name, pid, sig, start = line.split()
    targets[name] = (int(pid), int(sig), start)
alive = [(pid, start) for pid, sig, start in targets.values() if started(pid) == start]
def signal_if_there(pid, start, sig):
    if started(pid) == start:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
for pid, sig, start in targets.values():
    signal_if_there(pid, start, sig)
deadline = time.monotonic() + float(sys.argv[1])
while any(started(pid) == start for pid, start in alive) and time.monotonic() < deadline:
    time.sleep(0.1)
for pid, start in alive:
    signal_if_there(pid, start, signal.SIGKILL)
"""
"""The guard: it reads `name pid signal start-time` lines until the pipe's other end closes (when
`t2m up` exits, however), then signals each process still there (the start time tells a recycled
pid apart), and SIGKILLs what is left after the timeout given as its argument."""


class Guard:
    """Stops processes that are not our children (daemons) when this process ends, however."""

    def __init__(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", GUARD, str(timeout_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )

    def watch(self, name: str, pid: int, sig: int) -> None:
        """Have `sig` sent to `pid` (replacing what `name` had) once this process has ended."""
        stat = Path(f"/proc/{pid}/stat").read_text()
        start = stat.rsplit(")", 1)[1].split()[19]  # field 22: start time since boot
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(f"{name} {pid} {int(sig)} {start}\n".encode())
            self.process.stdin.flush()
        except BrokenPipeError:  # the guard is gone: keep the stack up, say so
            print(f"t2m: cannot guard {name}: the guard process has exited", file=sys.stderr)

    def close(self) -> None:
        """This process is ending normally: the guard does its round now and exits."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()
