"""A worker's scratch files (render, narration, compose and thumbnail work dirs) under one
directory of its own, which the next worker on the host removes if its owner died.

A worker killed by SIGKILL or the OOM killer runs no `finally`: each temporary directory it had
open stayed in /tmp for good (a hundred after a day of kill tests here; at high quality a render
dir holds hundreds of MB). Each worker holds an exclusive `flock` on its directory's lock file
for as long as it lives; the kernel drops the lock however the process ends, so a directory
whose lock can be taken belongs to no live worker.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "t2m-worker-"
STAGING = ".t2m-claiming-"
LOCK = ".lock"


def claim(parent: Path | None = None) -> Path:
    """Remove what dead workers left under `parent` (the system temp dir by default), then make
    this process's scratch directory, lock it, and make it the default of `tempfile` (so every
    temporary directory this process opens lands in it). Returns it."""
    parent = Path(parent or tempfile.gettempdir())
    sweep(parent)
    # Locked before it gets its swept name, so no other worker's sweep can find it unlocked.
    staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=parent))
    fd = os.open(staging / LOCK, os.O_CREAT | os.O_RDWR, 0o600)  # not inherited by children
    fcntl.flock(fd, fcntl.LOCK_EX)  # held until this process ends: the fd is never closed
    root = parent / (PREFIX + staging.name.removeprefix(STAGING))
    staging.rename(root)
    tempfile.tempdir = str(root)
    return root


def release(root: Path) -> None:
    """Remove this process's scratch directory (at a clean exit)."""
    tempfile.tempdir = None
    shutil.rmtree(root, ignore_errors=True)


def sweep(parent: Path) -> list[Path]:
    """Remove the scratch directories under `parent` that no live process holds; returns them."""
    removed = []
    for root in parent.glob(PREFIX + "*"):
        if not root.is_dir() or root.is_symlink():
            continue
        try:
            fd = os.open(root / LOCK, os.O_RDWR | os.O_NOFOLLOW)
        except OSError:
            continue  # not one of ours
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its worker is alive
        else:
            shutil.rmtree(root, ignore_errors=True)
            removed.append(root)
        finally:
            os.close(fd)
    return removed
