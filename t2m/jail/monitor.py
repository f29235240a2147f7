"""The jail's watchdog, in a thread of its own (see t2m/jail/bwrap.py).

It must not share the worker's event loop: anything that blocks the loop (a stuck call, a slow
callback) would blind it, and a second render could then hold twice its limit unkilled. So a
thread per jail pumps the jail's output from a pipe into the log file, cutting it off (and the
jail) at the limit's very byte, and every `WATCH_INTERVAL_S` sums the jail's usage (RSS, CPU,
threads, work dir, the entries of its /tmp) and SIGKILLs the jail through a pidfd (no pid reuse
race) when any is over or the wall time has run out.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from pathlib import Path

from t2m.jail.limits import Limits, jail_usage, over_limit, tmp_entries

WATCH_INTERVAL_S = 0.2
CHUNK = 65536


class JailMonitor(threading.Thread):
    def __init__(self, pid: int, log_r: int, log_fd: int, work: Path, log: Path, limits: Limits):
        super().__init__(name=f"jail-monitor-{pid}", daemon=True)
        self.pid, self.log_r, self.log_fd = pid, log_r, log_fd
        self.work, self.log, self.limits = work, log, limits
        self.pidfd: int | None = None
        with contextlib.suppress(OSError):
            self.pidfd = os.pidfd_open(pid)
        self.deadline = time.monotonic() + limits.wall_s
        self.written = 0
        self.violation: str | None = None
        self.last_pids: tuple[int, ...] = ()
        self.exited = threading.Event()  # bwrap is gone: pump what is left, judge no more
        self.stop = threading.Event()  # every process of the jail is gone: drain and return

    def run(self) -> None:
        try:
            self._watch()
        except Exception as e:  # an unwatched jail must not live on
            self._kill(f"watchdog failed ({type(e).__name__}: {e})")
        finally:
            if self.log_r >= 0:
                os.close(self.log_r)
            if self.pidfd is not None:
                os.close(self.pidfd)

    def _watch(self) -> None:
        next_check = time.monotonic()
        while not self.stop.is_set():
            self._pump(WATCH_INTERVAL_S)
            judging = self.violation is None and not self.exited.is_set()
            if judging and time.monotonic() >= next_check:
                next_check = time.monotonic() + WATCH_INTERVAL_S
                self._check()
        while self.log_r >= 0 and self._pump(0):  # the writers are dead: take the rest
            pass

    def _pump(self, timeout: float) -> bool:
        """Move what the jail wrote into the log, up to its limit; False at end of output."""
        if self.log_r < 0:
            self.stop.wait(timeout)
            return False
        ready, _, _ = select.select([self.log_r], [], [], timeout)
        if not ready:
            return False
        chunk = os.read(self.log_r, CHUNK)
        if not chunk:
            os.close(self.log_r)
            self.log_r = -1
            return False
        room = self.limits.log_mb * 1024**2 - self.written
        if room > 0:
            self.written += os.write(self.log_fd, chunk[:room])
        if len(chunk) > room and self.violation is None:
            self._kill(f"output limit exceeded ({self.limits.log_mb} MB of output)")
        return True

    def _check(self) -> None:
        usage = jail_usage(self.pid)
        self.last_pids = usage.pids or self.last_pids
        violation = over_limit(usage, self.work, self.log, self.limits)
        if violation is None and tmp_entries(usage.pids, self.limits) > self.limits.tmp_files:
            violation = f"file count limit exceeded ({self.limits.tmp_files} files in /tmp)"
        if violation is None and time.monotonic() > self.deadline:
            violation = f"timed out after {self.limits.wall_s:.0f} s"
        if violation is not None:
            self._kill(violation)

    def _kill(self, violation: str) -> None:
        self.violation = violation
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        for pid in self.last_pids[1:]:  # inside the jail's PID namespace: no reuse while it lives
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
