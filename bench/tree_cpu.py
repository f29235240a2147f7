"""The exact CPU seconds of a process tree, jails included (bench/capacity.py, bench/split_bench.py)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


class TreeCPU:
    """The exact CPU seconds of a process and of everything it starts from now on, alive or
    reaped: a cgroup of its own (a cgroup v1 `cpuacct` hierarchy, or cgroup v2), which its
    descendants inherit whatever namespaces they enter. A jail's CPU does not come back to the
    worker when it is reaped (bwrap's PID namespace) and sampling the live jails misses the
    short ones (a probe, a thumbnail) and every jail's last interval: a low-quality render in
    `split_bench`'s scene burned 3.5 s of CPU by its cgroup and 2.3 s by 0.5 s samples.
    Needs root (the bench runs as root, like the worker); `open` returns None where no
    hierarchy is writable, and the bench falls back to sampling."""

    def __init__(self, group: Path, usage: Path, scale: float) -> None:
        self.group, self.usage, self.scale = group, usage, scale

    @classmethod
    def open(cls, pid: int) -> TreeCPU | None:
        v1 = Path("/sys/fs/cgroup/cpuacct")
        name = f"t2m-bench-{os.getpid()}"
        if (v1 / "cpuacct.usage").exists():
            meter = cls(v1 / name, v1 / name / "cpuacct.usage", 1e-9)
        elif Path("/sys/fs/cgroup/cgroup.controllers").exists():
            meter = cls(
                Path("/sys/fs/cgroup") / name, Path("/sys/fs/cgroup") / name / "cpu.stat", 1e-6
            )
        else:
            return None
        try:
            meter.group.mkdir()
            (meter.group / "cgroup.procs").write_text(str(pid))
            meter.seconds()
        except OSError as e:
            print(f"no cgroup for process {pid}: {e}", file=sys.stderr)
            meter.close()
            return None
        return meter

    def seconds(self) -> float:
        text = self.usage.read_text()
        if self.usage.name == "cpu.stat":  # v2: "usage_usec N" among other lines
            text = next(x for x in text.splitlines() if x.startswith("usage_usec ")).split()[1]
        return int(text) * self.scale

    def leave(self, pid: int) -> None:
        """Move `pid` back to the hierarchy's root (so that the cgroup can be removed while it
        lives on; its children started since stay counted until they end)."""
        (self.group.parent / "cgroup.procs").write_text(str(pid))

    def close(self) -> None:
        """Remove the cgroup once its processes have ended (the stack stopped; killed jails
        may take a moment to leave it)."""
        for _ in range(50):
            try:
                self.group.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:  # EBUSY: a process is still in it
                time.sleep(0.1)
