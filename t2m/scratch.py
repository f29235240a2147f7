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
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

PREFIX = "t2m-worker-"
STAGING = ".t2m-claiming-"
LOCK = ".lock"
STAGING_STALE_S = 60
"""A staging directory this old was left by a worker killed while it claimed (a claim takes
microseconds); a younger one may be a live worker's, between its creation and its lock."""

log = logging.getLogger(__name__)
_tmpdir_before: list[str | None] = []
"""`TMPDIR` as it was before `claim`, for `release` to put back."""


def claim(parent: Path | None = None) -> Path | None:
    """Remove what dead workers left under `parent` (the system temp dir by default), then make
    this process's scratch directory, lock it, and make it the temp dir of `tempfile` and of the
    processes it starts (`TMPDIR`), so every temporary file lands in it. Returns it; None where
    the file system cannot lock (the temp dir is used as it is, and nothing is swept)."""
    parent = Path(parent or tempfile.gettempdir())
    sweep(parent)
    # Locked before it gets its swept name, so no other worker's sweep can find it unlocked.
    staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=parent))
    fd = os.open(staging / LOCK, os.O_CREAT | os.O_RDWR, 0o600)  # not inherited by children
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until this process ends: the fd is never closed
    except OSError as e:
        os.close(fd)
        shutil.rmtree(staging, ignore_errors=True)
        log.warning("no scratch directory of its own: %s cannot lock files (%s)", parent, e)
        return None
    root = parent / (PREFIX + staging.name.removeprefix(STAGING))
    staging.rename(root)
    _tmpdir_before.append(os.environ.get("TMPDIR"))
    tempfile.tempdir = os.environ["TMPDIR"] = str(root)
    return root


def release(root: Path | None) -> None:
    """Remove this process's scratch directory at a clean exit, its lock file last: what cannot
    be removed (a file still being written) stays locked until this process ends, and then the
    next worker's sweep removes it."""
    if root is None:
        return
    tempfile.tempdir = None
    before = _tmpdir_before.pop() if _tmpdir_before else None
    if before is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = before
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.name == LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    try:
        (root / LOCK).unlink()
        root.rmdir()
    except OSError:
        pass  # not empty: left locked for the next sweep


def sweep(parent: Path) -> list[Path]:
    """Remove the scratch directories under `parent` that no live process holds (and the staging
    directories of claims killed half-way); returns them."""
    removed = []
    staged = [p for p in parent.glob(STAGING + "*") if _older_than(p, STAGING_STALE_S)]
    for root in [*parent.glob(PREFIX + "*"), *staged]:
        if not root.is_dir() or root.is_symlink():
            continue
        try:
            fd = os.open(root / LOCK, os.O_RDWR | os.O_NOFOLLOW)
        except FileNotFoundError:
            if root.name.startswith(STAGING):  # killed before it made its lock file
                shutil.rmtree(root, ignore_errors=True)
                removed.append(root)
            continue
        except OSError:
            continue  # not one of ours
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its worker is alive (or the file system cannot lock: left alone)
        else:
            shutil.rmtree(root, ignore_errors=True)
            removed.append(root)
        finally:
            os.close(fd)
    return removed


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.lstat().st_mtime > seconds
    except OSError:
        return False
