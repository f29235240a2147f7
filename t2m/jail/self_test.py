"""The jail's self-test: before a worker takes render or media work, build a real jail and check
from inside that it holds (see `t2m.jail.bwrap`); a worker that cannot jail refuses those queues
with the reason instead of rendering unjailed."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from t2m.jail.bwrap import run_python
from t2m.jail.limits import JailUnavailable, Limits
from t2m.jail.seccomp import seccomp_filter


async def check_jail(timeout_s: float = 20.0) -> None:
    """Fail fast, with a clear message, unless a render jail can be built here: a real jail checked
    from inside (an unprivileged uid, no capabilities, no_new_privs, the seccomp filter and its
    refusal of sockets, only loopback, a writable work dir). Any failure, an OS error included, is
    JailUnavailable."""
    probe = (
        "import os, socket\n"
        "caps = [l for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapBnd', "
        "'NoNewPrivs', 'Seccomp:'))]\n"
        "links = len(open('/proc/self/net/dev').readlines()) - 2\n"
        "try:\n    socket.socket().close(); sockets = 'made'\n"
        "except PermissionError:\n    sockets = 'refused'\n"
        "open('probe', 'w').write('ok')\n"
        "print(os.getuid(), os.getgid(), links, sockets, *[l.split()[1] for l in caps])"
    )
    try:  # a missing capability, a read-only path, a failed clean-up (TemporaryDirectory), ...
        await _self_test(probe, timeout_s)
    except (OSError, RecursionError, subprocess.SubprocessError, ValueError) as e:
        raise JailUnavailable(f"{type(e).__name__}: {e}"[:500]) from e


async def _self_test(probe: str, timeout_s: float) -> None:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory(prefix="t2m-jail-check-") as tmp:
        work, log = Path(tmp) / "job", Path(tmp) / "log"
        limits = Limits(memory_mb=512, cpu_s=10, wall_s=timeout_s)
        run = await run_python(["-I", "-c", probe], work, log, env=env, limits=limits)
        out = run.log.split()
        filtered = seccomp_filter() is not None
        sockets, seccomp = ("refused", "2") if filtered else ("made", "0")
        expected_rest = ["1", sockets, "0000000000000000", "0000000000000000", "1", seccomp]
        if run.returncode != 0 or out[2:] != expected_rest:
            raise JailUnavailable(f"the jail self-test failed (rc {run.returncode}): {run.log}")
        if os.geteuid() == 0 and (out[0] == "0" or out[1] == "0"):
            raise JailUnavailable(f"the jail runs as uid/gid {out[0]}/{out[1]}, not unprivileged")
        if not (work / "probe").is_file():
            raise JailUnavailable("the jail could not write its work dir")
