"""cgroup v2 memory and pids limits per jail, where the host delegates a subtree to the worker.

The watchdog sums RSS; the kernel's memory controller counts everything a jail makes the host
hold (page cache, tmpfs and shmem pages, kernel memory such as inodes and dentries, socket
buffers), so where it is available each jail gets a cgroup of its own: `memory.max` (the jail's
memory plus its /tmp), no swap, `memory.oom.group` (the whole jail dies at the limit) and
`pids.max`. Without one, the fallback in t2m/jail/bwrap.py holds: seccomp refuses memfds and SysV
shared memory, RLIMIT_NOFILE is low, /tmp is capped in bytes and watched in entries.

To give the worker a subtree (cgroup v2 only; a v1 or hybrid host has no place for it):
- systemd: run the worker as a unit with `Delegate=yes` (e.g. `DelegateSubgroup=worker` on
  systemd ≥ 254, or a `ExecStartPre` that moves the service into `<unit cgroup>/worker`), and
  set `T2M_JAIL_CGROUP=/sys/fs/cgroup/<unit cgroup>/jails`;
- a container with its own cgroup namespace (podman/docker `--cgroupns=private`, Kubernetes on
  cgroup v2): move the worker into `/sys/fs/cgroup/worker` at start and set
  `T2M_JAIL_CGROUP=/sys/fs/cgroup/jails`.
The directory must exist, be writable, and list `memory` and `pids` in `cgroup.controllers`; no
process may live in it (cgroup v2's no-internal-process rule), which is why the worker sits in
a sibling. When the setting names an unusable directory the jail refuses to start
(JailUnavailable) rather than run without the limits the operator asked for.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from t2m.jail.limits import JailUnavailable

ENV = "T2M_JAIL_CGROUP"


def delegated() -> Path | None:
    """The delegated parent of the jails' cgroups, or None when none is configured."""
    path = os.environ.get(ENV, "")
    if not path:
        return None
    root = Path(path)
    try:
        controllers = set((root / "cgroup.controllers").read_text().split())
    except OSError as e:
        raise JailUnavailable(f"{ENV}={path} is not a cgroup v2 directory: {e}") from None
    if missing := {"memory", "pids"} - controllers:
        raise JailUnavailable(
            f"{ENV}={path} lacks the {', '.join(sorted(missing))} controller(s); enable them in "
            "its parent's cgroup.subtree_control (see t2m/jail/cgroup.py)"
        )
    enabled = set((root / "cgroup.subtree_control").read_text().split())
    if {"memory", "pids"} - enabled:
        (root / "cgroup.subtree_control").write_text("+memory +pids")
    return root


@contextlib.contextmanager
def jail_cgroup(memory_mb: int, pids: int) -> Iterator[Path | None]:
    """A fresh cgroup for one jail (None without delegation); every process in it is killed and
    the cgroup removed on exit."""
    root = delegated()
    if root is None:
        yield None
        return
    cg = root / f"jail-{os.getpid()}-{secrets.token_hex(4)}"
    cg.mkdir()
    try:
        (cg / "memory.max").write_text(str(memory_mb * 1024**2))
        (cg / "memory.swap.max").write_text("0")
        (cg / "memory.oom.group").write_text("1")
        (cg / "pids.max").write_text(str(pids))
        yield cg
    finally:
        _kill_all(cg)


def enter(cg: Path | None, argv: list[str]) -> list[str]:
    """`argv` run so that it starts inside `cg`: a shell moves itself in, then execs it (its
    children, bwrap and the whole jail, are born inside)."""
    if cg is None:
        return argv
    move = 'echo $$ > "$1" && shift && exec "$@"'
    return ["/bin/sh", "-c", move, "sh", str(cg / "cgroup.procs"), *argv]


def oom_killed(cg: Path | None) -> bool:
    """Whether the kernel killed the jail at its memory limit."""
    if cg is None:
        return False
    with contextlib.suppress(OSError):
        for line in (cg / "memory.events").read_text().splitlines():
            key, value = line.split()
            if key in ("oom_kill", "oom_group_kill") and int(value) > 0:
                return True
    return False


def _kill_all(cg: Path, wait_s: float = 5.0) -> None:
    with contextlib.suppress(OSError):
        (cg / "cgroup.kill").write_text("1")  # Linux ≥ 5.14
    until = time.monotonic() + wait_s
    while time.monotonic() < until:
        try:
            procs = [int(p) for p in (cg / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not procs:
            break
        for pid in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    with contextlib.suppress(OSError):
        cg.rmdir()
