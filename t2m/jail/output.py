"""Reading what a jailed program left behind: it chose what each name is, so a file it hands back
is read only if it is a regular file inside its work dir, and never by a call that can block."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_output(work: Path, name: str | Path, max_bytes: int) -> bytes:
    """Up to `max_bytes` of the file `name` under `work`, written by the jail; OSError or
    ValueError if it is anything else. A symlink (resolved here against the host's filesystem)
    must land inside `work`; the last component is not followed; and the open does not wait: a
    FIFO the jail made where its answer should be would block a plain open for ever (no writer
    is left), freezing the worker's event loop for every job it runs."""
    root = os.path.realpath(work)
    path = os.path.realpath(work / name)
    if not Path(path).is_relative_to(root):
        raise ValueError(f"{name} points outside the work dir")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{name} is not a regular file")
        return f.read(max_bytes)
