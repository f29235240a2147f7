"""The render jail: run this Python interpreter on untrusted code, isolated, as nobody, with limits.

Every render is an attacker's program (the model writes what the request asks for), so the jail,
not the static check, is the boundary. Design, and why:

- **bubblewrap** builds it: new mount, PID, IPC, UTS, network (loopback only) and cgroup
  namespaces, `--new-session` (no terminal injection), `--die-with-parent`. The filesystem is a
  fresh tmpfs holding only read-only binds of what a render needs (`/usr`, the Python runtime, the
  venv's `lib`, the files of `t2m` it runs (`T2M_FILES`), the TeX/fontconfig entries of `/etc`
  and `/var`), a fresh `/proc` of the jail's own PID namespace, a minimal `/dev`, a size-capped
  `/tmp` and one writable host directory, the render's work dir, at `/job`. The data dir, storage,
  `secret.key`, Temporal's and PostgreSQL's files and sockets, `/root`, the repo and other
  renders' work dirs are simply not there. bwrap's arguments go through `--args FD` so the
  jail's `/proc/1/cmdline` does not show host paths.
- **A real unprivileged uid.** A root worker starts bwrap as root *without* a user namespace (so
  it can bind root-only paths such as a pyenv prefix under a 0700 `/root`), keeping only
  CAP_SETUID/SETGID/SETPCAP; inside, `setpriv` switches to a real uid/gid, clears supplementary
  groups, the inheritable and bounding capability sets and sets no_new_privs before the
  interpreter starts. Root mapped into a user namespace would still open files as root (checked:
  root's 0640 files were readable); a real uid cannot read root's files even if one were bound by
  mistake. Each concurrent render takes its own uid from a pool (a `flock`ed slot file, so
  several workers on one host never share one): RLIMIT_NPROC then caps the processes of exactly
  one jail, and renders cannot signal or ptrace each other. A non-root worker uses bwrap's
  unprivileged user-namespace mode and runs the render as itself, which owns none of the hidden
  files because they are not mounted.
- **Limits for the jail as a whole.** cgroup v2 is not delegated on the hosts this runs on (this
  one has a v1 hierarchy owned by the VM's init), so: per-process RLIMIT_AS/CPU/FSIZE/CORE (and
  NPROC on the slot uid, NOFILE; seccomp refuses memfds and SysV shared memory), plus a watchdog
  in a thread of its own (`t2m.jail.monitor`: a blocked event loop cannot blind it) that every
  0.2 s sums the RSS, CPU time and threads of every process of the jail (the descendants of
  bwrap; inside a PID namespace nothing can re-parent out of that tree), the bytes and entries of
  the work dir and the entries of the jail's `/tmp` (a tmpfs of fixed size), and kills the jail
  when any is over. The root and `/dev` tmpfs are read-only. See `t2m.jail.cgroup` for the
  cgroup v2 limits used where the host delegates a subtree.
- **Killing is total.** The worker SIGKILLs bwrap; `--die-with-parent` takes the jail's init with
  it (and bwrap with a dead worker: it sets the parent-death signal on itself too), and when a PID
  namespace's init dies the kernel kills every process in it (setsid'd orphans included). The
  parent-death signal follows the worker's *thread* that started bwrap: start renders from the
  event loop's thread (as `render()` does), not from a short-lived thread.
- **Output goes through a pipe to the watchdog thread**, which writes it to a file up to the
  limit's byte and kills the jail past it; nothing waits for the pipe's end (a grandchild holding
  stdout cannot keep the worker waiting), and only the log's tail is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from t2m.jail import cgroup as jail_cgroup
from t2m.jail.limits import JailUnavailable, Limits, jail_usage, kill_uid, wait_gone
from t2m.jail.monitor import JailMonitor
from t2m.jail.seccomp import seccomp_filter

JAIL_WORKDIR = "/job"
UID_BASE = 2_000_000_000  # far from login users, system users and the usual subuid ranges
UID_SLOTS = 64
SLOT_LOCK_DIR = Path("/run/t2m-jail")
LOG_TAIL_BYTES = 64 * 1024
# What the render needs from the host besides /usr and the Python runtime: fontconfig, TeX
# (kpathsea's texmf.cnf lives in /etc/texmf, format files in /var/lib/texmf), the alternatives
# symlinks some /usr/bin tools go through, and the dynamic linker's cache.
HOST_PATHS = (
    "/etc/alternatives",
    "/etc/fonts",
    "/etc/texmf",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/var/lib/texmf",
    "/var/cache/fontconfig",
)
# What renders and media jails import of t2m (read-only, no secrets).
T2M_FILES = (
    "__init__.py",
    "vocabulary/__init__.py",
    "vocabulary/plan.py",
    "vocabulary/usage.py",
    "errors.py",
    "render/__init__.py",
    "render/runner.py",
    "render/layout_check.py",
    "media/__init__.py",
    "media/probe.py",
    "media/jail_main.py",
    "media/compose.py",
    "media/encoding.py",
    "media/speech_audio.py",
    "media/festival.py",
)
"""What of t2m a jailed program may import (the render runner and the media work), relative to the
package; nothing else of t2m (the jail's own code, the catalog, settings) is visible inside."""
NICENESS = 19
"""Renders run at the lowest CPU priority: on shared cores they take only what the API, Temporal,
PostgreSQL and the worker's event loop leave (status p99 under load was about half of nice 10's)."""


@dataclass
class JailRun:
    returncode: int | None
    log: str  # the tail of the jail's stdout and stderr
    violation: str | None  # why the worker killed the jail, if it did


def bwrap_path() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise JailUnavailable("bubblewrap (`bwrap`) is not installed: `apt-get install bubblewrap`")
    return path


def _setpriv_path() -> str:
    path = shutil.which("setpriv")
    if path is None:
        raise JailUnavailable("`setpriv` (util-linux) is not installed")
    return path


@contextlib.contextmanager
def uid_slot() -> Iterator[int | None]:
    """A uid of its own for one jail, or None when the worker is not root (see module doc).

    Slots are `flock`ed files, so they are shared correctly by several worker processes and freed
    by the kernel if a worker dies. Leftover processes of the uid (impossible unless a jail
    outlived its worker) are killed before the uid is handed out.
    """
    if os.geteuid() != 0:
        yield None
        return
    SLOT_LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    for slot in range(UID_SLOTS):
        fd = os.open(SLOT_LOCK_DIR / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        uid = UID_BASE + slot
        try:
            kill_uid(uid)
            yield uid
        finally:
            try:
                kill_uid(uid)
            finally:
                os.close(fd)
        return
    raise JailUnavailable(f"all {UID_SLOTS} jail uids are in use")


def _python_paths() -> tuple[list[str], dict[str, str]]:
    """This interpreter's runtime, its venv's `lib` and pyvenv.cfg and the t2m files a render
    imports (read-only binds), and the symlinks `sys.executable` needs to find pyvenv.cfg."""
    binds = [os.path.realpath(sys.base_prefix)]
    symlinks: dict[str, str] = {}
    if sys.prefix != sys.base_prefix:
        binds += [f"{sys.prefix}/pyvenv.cfg", os.path.realpath(f"{sys.prefix}/lib")]
        symlinks[sys.executable] = os.path.realpath(sys.executable)
    package = Path(__file__).resolve().parents[1]
    binds += [str(package / name) for name in T2M_FILES]
    return binds, symlinks


def bwrap_options(work: Path, uid: int | None, limits: Limits) -> list[str]:
    """bwrap's options (passed through `--args FD`) for a jail around `work`."""
    args = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--unshare-cgroup"]
    args += ["--die-with-parent", "--new-session", "--hostname", "jail"]
    if uid is None:
        args += ["--unshare-user", "--cap-drop", "ALL"]
    else:
        args += ["--cap-drop", "ALL"]
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    args += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    # /proc, /dev and /tmp first: a bind under /tmp (a venv or checkout living there) must land
    # on the jail's own /tmp, not be hidden by it.
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", str(limits.tmp_mb * 1024**2), "--tmpfs", "/tmp"]
    binds, symlinks = _python_paths()
    made: set[Path] = {Path("/"), Path("/usr"), Path("/proc"), Path("/dev"), Path("/tmp")}

    def parents(path: str) -> list[str]:
        # bwrap run as root creates missing parents mode 0700: make them 0755 (they are empty
        # tmpfs directories, so this shows nothing).
        out: list[str] = []
        for parent in reversed(Path(path).parents):
            if parent not in made:
                made.add(parent)
                out += ["--perms", "0755", "--dir", str(parent)]
        return out

    for path in [*HOST_PATHS, *binds]:
        if os.path.exists(path):
            args += [*parents(path), "--ro-bind", path, path]
    for link, target in symlinks.items():
        args += [*parents(link), "--symlink", target, link]
    args += ["--bind", str(work), JAIL_WORKDIR, "--chdir", JAIL_WORKDIR]
    # The root and /dev are tmpfs without a size: read-only, so that only the capped /tmp and
    # the watched work dir can hold files (a non-root worker's jail owns them, /dev/shm too).
    return args + ["--remount-ro", "/dev", "--remount-ro", "/"]


def jail_command(uid: int | None, argv: list[str]) -> list[str]:
    """What bwrap runs in the jail: `argv`, in root mode as the slot uid with nothing else."""
    if uid is None:
        return argv
    drop = [_setpriv_path(), f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    return [*drop, "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", *argv]


def _prlimit(limits: Limits) -> list[str]:
    """`prlimit` (util-linux) setting the per-process limits that bwrap and everything in the jail
    inherit. A wrapper command rather than a `preexec_fn`: the worker has threads, and running
    Python between fork and exec can deadlock then. Root is exempt from RLIMIT_NPROC; it binds the
    slot uid once setpriv switches to it. A non-root worker's jail is a new user namespace, where
    the kernel counts the jail's processes apart from the worker's."""
    path = shutil.which("prlimit")
    if path is None:
        raise JailUnavailable("`prlimit` (util-linux) is not installed")
    mem, disk = limits.memory_mb * 1024**2, limits.disk_mb * 1024**2
    nice = shutil.which("nice") or "/usr/bin/nice"
    return [
        nice,  # renders yield the CPU to the API, Temporal and the worker's event loop
        "-n",
        str(NICENESS),
        path,
        f"--as={mem}",
        f"--cpu={limits.cpu_s}:{limits.cpu_s + 5}",
        f"--fsize={disk}",
        "--core=0",
        f"--nproc={limits.threads}",
        f"--nofile={limits.open_files}",
        "--",
    ]


def _read_tail(path: Path, max_bytes: int) -> str:
    with contextlib.suppress(OSError), open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - max_bytes))
        return f.read().decode(errors="replace")
    return ""


def _prepare_work(work: Path, uid: int | None) -> None:
    work.mkdir(parents=True, exist_ok=True)
    if uid is not None:
        for dirpath, dirnames, filenames in os.walk(work):
            for name in [*dirnames, *filenames]:
                os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)
        os.chown(work, uid, uid)
    # bwrap, as root without CAP_DAC_OVERRIDE, must be able to chdir into it.
    work.chmod(0o711)


async def run_python(
    args: list[str],
    work: Path,
    log: Path,
    *,
    env: dict[str, str],
    limits: Limits,
    on_tick: Callable[[], Awaitable[None] | None] | None = None,
    tick_s: float = 2.0,
) -> JailRun:
    """Run `python ARGS` (this interpreter) in a fresh jail whose only writable host directory is
    `work` (seen as /job, the cwd); stdout and stderr go to `log`, which is outside the jail.

    Returns once every process of the jail is gone: the command exited (its PID namespace dies
    with it), a limit was hit, or the wall time ran out. If the awaiting task is cancelled the
    jail is killed before re-raising. Raises JailUnavailable if bwrap could not build the jail.
    """
    bwrap = bwrap_path()
    cgroup = jail_cgroup.jail_cgroup(limits.memory_mb + limits.tmp_mb, limits.threads)
    with uid_slot() as uid, cgroup as cg:
        _prepare_work(work, uid)
        options = bwrap_options(work, uid, limits)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # Output goes through a pipe the monitor reads, so its limit holds at the byte.
        log_r, log_w = os.pipe()
        arg_r, arg_w = os.pipe()
        status_r, status_w = os.pipe()
        seccomp_r, seccomp_w = os.pipe()
        try:
            if (bpf := seccomp_filter()) is not None:
                os.write(seccomp_w, bpf)
                options += ["--seccomp", str(seccomp_r)]
            os.close(seccomp_w)
            os.write(arg_w, b"".join(a.encode() + b"\0" for a in options))
            os.close(arg_w)
            bwrap_argv = [bwrap, "--json-status-fd", str(status_w), "--args", str(arg_r)]
            command = jail_command(uid, [sys.executable, *args])  # cannot be in --args
            proc = await asyncio.create_subprocess_exec(
                *jail_cgroup.enter(cg, [*_prlimit(limits), *bwrap_argv, *command]),
                stdin=subprocess.DEVNULL,
                stdout=log_w,
                stderr=log_w,
                env=env,
                pass_fds=(arg_r, status_w, seccomp_r),
                start_new_session=True,
            )
        except BaseException:
            for fd in (status_r, out, log_r):
                os.close(fd)
            raise
        finally:
            for fd in (log_w, arg_r, status_w, seccomp_r):
                os.close(fd)
        monitor = JailMonitor(proc.pid, log_r, out, work, log, limits)
        monitor.start()
        try:
            while True:
                try:
                    await asyncio.wait_for(asyncio.shield(proc.wait()), tick_s)
                    break
                except TimeoutError:
                    pass
                if on_tick is not None:
                    r = on_tick()
                    if r is not None:
                        await r
        finally:
            monitor.exited.set()
            await _kill(proc, monitor.last_pids, uid)
            monitor.stop.set()
            await asyncio.to_thread(monitor.join)
            os.close(out)
            status = _read_all(status_r)
        if '"child-pid"' not in status:
            raise JailUnavailable(f"bwrap could not set up the jail: {_read_tail(log, 2000)}")
        violation = monitor.violation
        if violation is None and jail_cgroup.oom_killed(cg):
            violation = f"memory limit exceeded ({limits.memory_mb} MB for the whole render)"
        return JailRun(proc.returncode, _read_tail(log, LOG_TAIL_BYTES), violation)


async def _kill(proc: asyncio.subprocess.Process, seen: tuple[int, ...], uid: int | None) -> None:
    """SIGKILL bwrap (the jail's init follows it, and the PID namespace with it) and every process
    of the jail; return once none is left (in root mode: no process of the slot uid either)."""
    pids = set(seen)
    if proc.returncode is None:
        pids |= set(jail_usage(proc.pid).pids)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    await proc.wait()
    await asyncio.to_thread(wait_gone, pids, uid)


def _read_all(fd: int) -> str:
    """Everything bwrap wrote to its status pipe; called once no writer is left."""
    chunks = []
    try:
        os.set_blocking(fd, False)
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")
