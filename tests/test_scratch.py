"""A worker's scratch directory (`t2m.scratch`): what a killed worker left is removed by the next
one on the host; a live worker's is never touched."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from t2m import scratch

HOLDER = (
    "import os, sys, tempfile, time\n"
    "from pathlib import Path\n"
    "from t2m import scratch\n"
    "root = scratch.claim(Path(sys.argv[1]))\n"
    "work = tempfile.mkdtemp(prefix='t2m-render-')\n"
    "Path(work, 'partial.mp4').write_bytes(b'x' * 1000)\n"
    "print(root, work, os.environ['TMPDIR'], flush=True)\n"
    "if sys.argv[2] == 'hold':\n"
    "    time.sleep(120)\n"
    "scratch.release(root)\n"
)


def holder(parent: Path, mode: str) -> tuple[subprocess.Popen[str], Path, Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(parent), mode], stdout=subprocess.PIPE, text=True
    )
    root, work, tmpdir = proc.stdout.readline().split()  # type: ignore[union-attr]
    assert tmpdir == root  # and the processes it starts (TMPDIR) use it too
    return proc, Path(root), Path(work)


def test_a_killed_workers_files_are_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    killed, killed_root, killed_work = holder(tmp_path, "hold")
    live, live_root, live_work = holder(tmp_path, "hold")
    try:
        assert killed_work.parent == killed_root  # tempfile's default is the worker's own dir
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert (killed_work / "partial.mp4").exists()  # a SIGKILL cleans nothing up
        assert scratch.sweep(tmp_path) == [killed_root]
        assert not killed_root.exists()
        assert (live_work / "partial.mp4").exists()
        assert scratch.sweep(tmp_path) == []
    finally:
        live.kill()
        live.wait()


def test_a_worker_that_ends_cleanly_leaves_nothing(tmp_path: Path) -> None:
    proc, root, _ = holder(tmp_path, "exit")
    assert proc.wait() == 0
    assert not root.exists()
    assert list(tmp_path.iterdir()) == []


def test_what_is_not_a_workers_directory_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "t2m-worker-nolock").mkdir()  # no lock file: not one of ours
    (tmp_path / "t2m-worker-link").symlink_to(tmp_path / "t2m-worker-nolock")
    (tmp_path / "t2m-render-other").mkdir()
    assert scratch.sweep(tmp_path) == []
    assert len(list(tmp_path.iterdir())) == 3


def test_a_claim_killed_half_way_is_removed_once_stale(tmp_path: Path) -> None:
    locked = tmp_path / f"{scratch.STAGING}locked"  # killed after it made its lock file
    locked.mkdir()
    (locked / scratch.LOCK).touch()
    bare = tmp_path / f"{scratch.STAGING}bare"  # killed before
    bare.mkdir()
    fresh = tmp_path / f"{scratch.STAGING}fresh"  # maybe a live worker between mkdir and lock
    fresh.mkdir()
    old = time.time() - scratch.STAGING_STALE_S - 5
    for path in (locked, bare):
        os.utime(path, (old, old))
    assert sorted(scratch.sweep(tmp_path)) == sorted([locked, bare])
    assert list(tmp_path.iterdir()) == [fresh]


def test_release_puts_tmpdir_back_even_when_the_dir_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", "/somewhere/else")
    monkeypatch.setattr(tempfile, "tempdir", None)
    root = scratch.claim(tmp_path)
    assert root is not None and os.environ["TMPDIR"] == tempfile.gettempdir() == str(root)
    shutil.rmtree(root)  # an operator cleaned /tmp under a running worker
    scratch.release(root)
    assert os.environ["TMPDIR"] == "/somewhere/else" and tempfile.tempdir is None
