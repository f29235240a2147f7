"""A worker SIGKILLed mid-job: a new worker finishes the job without re-rendering finished scenes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from temporalio.client import Client

from t2m.config import Settings
from t2m.vocabulary.request import VideoRequest
from tests.helpers import cli_env, gone, runners_under
from workflows.client import job_status, start_video
from workflows.worker_liveness import HEARTBEAT_STALE_S, queue_workers


def start_worker(settings: Settings, log: Path, tmp: Path) -> subprocess.Popen:
    # scenes render one after another; the worker's scratch files go under `tmp`
    env = cli_env(settings, T2M_RENDER_CONCURRENCY="1", TMPDIR=str(tmp))
    return subprocess.Popen(
        [sys.executable, "-m", "worker"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def rendered_scenes(log: Path) -> list[int]:
    return [int(m) for m in re.findall(r"render start job=\S+ scene=(\d+)", log.read_text())]


async def test_killed_worker_resumes_without_rerendering(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    req = VideoRequest(
        topic="Fractions",
        context="A fraction is a part of a whole. The denominator counts the parts. "
        "The numerator counts the parts we take.",
        model="offline/templates",
        quality="low",
    )
    first_log, second_log = tmp_path / "worker1.log", tmp_path / "worker2.log"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    first = start_worker(settings, first_log, tmp)
    try:
        handle = await start_video(client, settings, req)
        deadline = asyncio.get_running_loop().time() + 120
        while True:
            status = await job_status(handle)
            states = [s.state for s in status.scenes]
            if "done" in states and "rendering" in states:
                break
            assert asyncio.get_running_loop().time() < deadline, status
            await asyncio.sleep(0.1)
        done_before = {s.index for s in status.scenes if s.state == "done"}
        renders = runners_under(first.pid)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert done_before
    # The kill takes the sandboxed render with it (the jail dies with its parent, within moments).
    assert await gone(renders, timeout_s=5) == [], "a render outlived its killed worker"
    # The killed worker's render dir stays behind (nothing ran its clean-up) ...
    (left,) = tmp.glob("t2m-worker-*")
    assert list(left.glob("t2m-render-*")), list(left.iterdir())
    # /health sees it gone once its heartbeats stop (its pollers stay listed for 120 s).
    killed_at = time.monotonic()
    while (await queue_workers(client, settings))["workers_render"] == "ok":
        assert time.monotonic() - killed_at < HEARTBEAT_STALE_S + 10, "still 'ok' after the kill"
        await asyncio.sleep(0.5)

    second = start_worker(settings, second_log, tmp)
    try:
        result = await asyncio.wait_for(handle.result(), timeout=180)
        # ... until the next worker on the host removes it.
        assert not left.exists()
        assert set((await queue_workers(client, settings)).values()) == {"ok"}
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert list(tmp.iterdir()) == []  # and a worker that stops cleanly leaves nothing
    assert result.scenes == len(status.scenes)
    assert set(rendered_scenes(first_log)) >= done_before
    rerendered = set(rendered_scenes(second_log)) & done_before
    assert rerendered == set(), f"scenes rendered again after the restart: {rerendered}"
    assert (await job_status(handle)).status == "completed"
