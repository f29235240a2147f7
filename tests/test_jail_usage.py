"""The watchdog's accounting finds a jail's processes through the threads' children lists as a
scan of all of /proc does (t2m/jail/limits.py), including a child forked by a non-main thread
and a grandchild, at a fraction of the scan's cost."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from t2m.jail.limits import PROC_CHILDREN, jail_usage, tree_stats

TREE = """
import subprocess, threading, time
kids = []
def spawn():  # a child of a thread that is not the main one
    kids.append(subprocess.Popen(["sleep", "30"]))
t = threading.Thread(target=spawn)
t.start(); t.join()
kids.append(subprocess.Popen(["sh", "-c", "sleep 30 & wait"]))  # a child with a child
threading.Event().wait(30)
"""


@pytest.fixture
def tree() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", TREE])
    deadline = time.monotonic() + 10
    while len(tree_stats(proc.pid, scan=True)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    yield proc
    for pid in tree_stats(proc.pid, scan=True):
        subprocess.run(["kill", "-9", str(pid)], check=False)
    proc.wait()


@pytest.mark.skipif(not PROC_CHILDREN, reason="the kernel lists no thread's children")
def test_children_lists_find_what_a_scan_finds(tree: subprocess.Popen[bytes]) -> None:
    scanned = tree_stats(tree.pid, scan=True)
    listed = tree_stats(tree.pid, scan=False)
    assert len(scanned) == 4  # python, sleep, sh, sleep
    assert list(listed)[0] == tree.pid and set(listed) == set(scanned)
    usage = jail_usage(tree.pid)
    assert set(usage.pids) == set(scanned) and usage.pids[0] == tree.pid
    assert usage.threads >= 4 and usage.rss_bytes > 0

    def cost(scan: bool) -> float:
        t = time.process_time()
        for _ in range(50):
            tree_stats(tree.pid, scan=scan)
        return time.process_time() - t

    assert cost(scan=False) < cost(scan=True)
