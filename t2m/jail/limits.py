"""What a render jail may use, and what it uses: the limits for a jail as a whole and the
watchdog's accounting over every process of the jail and its work dir (see t2m/jail/bwrap.py for why
the limits are enforced this way)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from t2m.errors import ErrorKind, T2mError

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class JailUnavailable(T2mError, RuntimeError):
    """The jail cannot be set up on this host; nothing may be rendered unjailed."""

    kind = ErrorKind.JAIL_UNAVAILABLE


@dataclass(frozen=True)
class Limits:
    """Limits for one jail as a whole (memory and processes also per process, see module doc)."""

    memory_mb: int = 2048
    cpu_s: int = 120
    wall_s: float = 300
    threads: int = 96  # processes + threads (RLIMIT_NPROC counts threads too)
    disk_mb: int = 1024  # work dir + log
    files: int = 4000  # entries in the work dir
    tmp_mb: int = 256  # the /tmp tmpfs
    log_mb: int = 16  # stdout + stderr
    tmp_files: int = 10000  # entries in the /tmp tmpfs (each costs kernel memory, not bytes)
    open_files: int = 256  # RLIMIT_NOFILE: each pipe or socket holds kernel buffers


@dataclass
class Usage:
    rss_bytes: int = 0
    cpu_s: float = 0.0
    threads: int = 0
    pids: tuple[int, ...] = ()


PROC_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")
"""Whether the kernel lists each thread's children (CONFIG_PROC_CHILDREN). The watchdog then
reads the jail's own processes only (~0.1 ms a check); without it, the stat of every process on
the host (~1.6 ms with ~100 processes), which at 5 checks a second per jail cost a loaded render
worker more CPU than its Temporal work."""


def _stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (fields[0] is field 3, the state)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rindex(b")") + 2 :].split()


def _children(pid: int) -> list[int]:
    """The children of every thread of `pid` (a process may fork from any of its threads)."""
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                kids += [int(x) for x in f.read().split()]
    return kids


def _scan() -> tuple[dict[int, list[bytes]], dict[int, list[int]]]:
    """Every process's stat fields, and its children (from their parent pids): a scan of /proc."""
    stats: dict[int, list[bytes]] = {}
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := _stat(int(name))) is not None:
            stats[int(name)] = fields
            children.setdefault(int(fields[1]), []).append(int(name))
    return stats, children


def tree_stats(root_pid: int, scan: bool = not PROC_CHILDREN) -> dict[int, list[bytes]]:
    """The stat fields of `root_pid` and its descendants, root first; found through the
    threads' children lists, or with `scan` through a scan of all of /proc."""
    stat_of: Callable[[int], list[bytes] | None] = _stat
    children_of: Callable[[int], list[int]] = _children
    if scan:
        everyone, children = _scan()
        stat_of, children_of = everyone.get, lambda pid: children.get(pid, [])
    stats: dict[int, list[bytes]] = {}
    todo = [root_pid]
    while todo:
        pid = todo.pop()
        if pid in stats or (fields := stat_of(pid)) is None:
            continue
        stats[pid] = fields
        todo += children_of(pid)
    return stats


def jail_usage(root_pid: int) -> Usage:
    """RSS, CPU time (including reaped children) and threads of `root_pid` and its descendants."""
    usage = Usage()
    stats = tree_stats(root_pid)
    for stat in stats.values():
        usage.cpu_s += sum(int(x) for x in stat[11:15]) / CLK_TCK  # utime stime cutime cstime
        usage.threads += int(stat[17])
        usage.rss_bytes += int(stat[21]) * PAGE
    usage.pids = tuple(stats)
    return usage


def dir_usage(path: Path, max_entries: int) -> tuple[int, int]:
    """(bytes allocated, entries) under `path`, not following symlinks; stops counting entries
    past `max_entries`. An unreadable directory counts as over the limit: a render has no reason
    to hide files from the worker."""
    total, entries = 0, 0
    todo = [path]
    while todo and entries <= max_entries:
        try:
            it = os.scandir(todo.pop())
        except OSError:
            return total, max_entries + 1
        with it:
            for entry in it:
                entries += 1
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        todo.append(Path(entry.path))
    return total, entries


def over_limit(usage: Usage, work: Path, log: Path, limits: Limits) -> str | None:
    if usage.rss_bytes > limits.memory_mb * 1024**2:
        return f"memory limit exceeded ({limits.memory_mb} MB for the whole render)"
    if usage.cpu_s > limits.cpu_s:
        return f"CPU time limit exceeded ({limits.cpu_s} s for the whole render)"
    if usage.threads > limits.threads:
        return f"process limit exceeded ({limits.threads} processes and threads)"
    log_size = 0
    with contextlib.suppress(OSError):
        log_size = log.stat().st_blocks * 512
    if log_size > limits.log_mb * 1024**2:
        return f"output limit exceeded ({limits.log_mb} MB of output)"
    size, entries = dir_usage(work, limits.files)
    size += log_size
    if size > limits.disk_mb * 1024**2:
        return f"disk limit exceeded ({limits.disk_mb} MB written)"
    if entries > limits.files:
        return f"file count limit exceeded ({limits.files} files)"
    return None


def tmp_entries(pids: tuple[int, ...], limits: Limits) -> int:
    """Inodes in use in the jail's /tmp, seen through a jail process's root (0 when none is
    set up yet). The tmpfs is told apart from the host's /tmp by its size."""
    host = os.stat("/tmp").st_dev
    for pid in pids[1:]:
        tmp = f"/proc/{pid}/root/tmp"
        with contextlib.suppress(OSError):
            if os.stat(tmp).st_dev == host:
                continue
            fs = os.statvfs(tmp)
            if fs.f_blocks * fs.f_frsize == limits.tmp_mb * 1024**2:
                return fs.f_files - fs.f_ffree
    return 0


def uid_processes(uid: int) -> list[int]:
    """Pids whose real uid is `uid` (the jail's processes, in root mode)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{name}").st_uid == uid:
                    pids.append(int(name))
    return pids


def kill_uid(uid: int, wait_s: float = 5.0) -> None:
    """SIGKILL every process of `uid` and wait until none is left."""
    loop_until = time.monotonic() + wait_s
    while pids := uid_processes(uid):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > loop_until:
            raise RuntimeError(f"processes of jail uid {uid} survive SIGKILL: {pids}")
        time.sleep(0.02)


def wait_gone(pids: set[int], uid: int | None, wait_s: float = 5.0) -> None:
    until = time.monotonic() + wait_s
    while time.monotonic() < until and any(alive(pid) for pid in pids):
        time.sleep(0.01)
    if uid is not None:
        kill_uid(uid)


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return False
    return raw[raw.rindex(b")") + 2 : raw.rindex(b")") + 3] != b"Z"
