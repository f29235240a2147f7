"""Graceful drain: SIGTERM lets a worker's in-flight render finish (run once, attempt 1) and the
process exits within its drain limit; past the limit the render is cancelled and runs again."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle

from t2m.config import Settings
from t2m.models import VideoRequest
from tests.helpers import cli_env
from worker import DRAIN_MARGIN_S
from workflows.client import start_video

REQUEST = VideoRequest(
    topic="Fractions",
    context="A fraction is a part of a whole. The denominator counts the parts. "
    "The numerator counts the parts we take.",
    model="offline/templates",
    quality="high",  # renders of a few seconds: long enough to be caught in flight
)


def start_worker(
    settings: Settings, log: Path, drain_s: float, python: str = sys.executable, cwd: str = "."
) -> subprocess.Popen:
    env = cli_env(settings, T2M_RENDER_CONCURRENCY="1", T2M_WORKER_DRAIN_S=str(drain_s))
    return subprocess.Popen(
        [python, "-m", "worker"],
        env=env,
        cwd=cwd,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def render_in_flight(handle: WorkflowHandle, timeout_s: float = 120) -> str:
    """The activity id of a render_scene that a worker has started and not finished."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        desc = await handle.describe()
        for p in desc.raw_description.pending_activities:
            if (
                p.activity_type.name == "render_scene"
                and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            ):
                return p.activity_id
        await asyncio.sleep(0.1)
    raise AssertionError("no render started")


async def stop_and_time(proc: subprocess.Popen, timeout_s: float) -> tuple[int, float]:
    """SIGTERM `proc` (the process alone, as a container runtime does); its exit code and the
    seconds it took to exit."""
    start = time.monotonic()
    proc.terminate()
    code = await asyncio.to_thread(proc.wait, timeout_s)
    return code, time.monotonic() - start


async def attempts(handle: WorkflowHandle, activity_id: str) -> tuple[int, list[int], bool]:
    """For one activity: how often it was scheduled, the attempt of each start the history
    records (only the last attempt's), and whether it completed."""
    scheduled: dict[int, str] = {}
    starts: list[int] = []
    completed = False
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_id
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            a = e.activity_task_started_event_attributes
            if scheduled.get(a.scheduled_event_id) == activity_id:
                starts.append(a.attempt)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = e.activity_task_completed_event_attributes
            completed |= scheduled.get(done.scheduled_event_id) == activity_id
    return list(scheduled.values()).count(activity_id), starts, completed


async def test_sigterm_lets_the_render_in_flight_finish_once(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    drain_s = 60.0
    first = start_worker(settings, tmp_path / "worker1.log", drain_s)
    try:
        handle = await start_video(client, settings, REQUEST)
        render = await render_in_flight(handle)
        code, took = await stop_and_time(first, drain_s + DRAIN_MARGIN_S)
    finally:
        if first.poll() is None:
            first.kill()
    print(f"\nSIGTERM to exit with a render in flight: {took:.2f} s (drain limit {drain_s:g} s)")
    log = (tmp_path / "worker1.log").read_text()
    assert code == 0, log[-3000:]
    assert took < drain_s, "the worker must exit once its work is done, within the drain limit"
    assert "in-flight activities have 60 s to finish" in log
    assert await attempts(handle, render) == (1, [1], True), "the render ran exactly once"

    second = start_worker(settings, tmp_path / "worker2.log", drain_s)
    try:
        result = await asyncio.wait_for(handle.result(), timeout=240)
    finally:
        second.terminate()
        second.wait(timeout=drain_s + DRAIN_MARGIN_S)
    assert result.scenes >= 3
    assert await attempts(handle, render) == (1, [1], True)


async def test_past_the_drain_limit_the_render_is_cancelled_and_runs_again(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    drain_s = 0.5  # shorter than any render at this quality
    first = start_worker(settings, tmp_path / "worker1.log", drain_s)
    try:
        handle = await start_video(client, settings, REQUEST)
        render = await render_in_flight(handle)
        code, took = await stop_and_time(first, drain_s + DRAIN_MARGIN_S + 5)
    finally:
        if first.poll() is None:
            first.kill()
    print(f"\nSIGTERM to exit past a {drain_s:g} s drain limit: {took:.2f} s")
    assert code == 0, (tmp_path / "worker1.log").read_text()[-3000:]
    assert took < drain_s + DRAIN_MARGIN_S

    second = start_worker(settings, tmp_path / "worker2.log", drain_s)
    try:
        await asyncio.wait_for(handle.result(), timeout=240)
    finally:
        second.terminate()
        second.wait(timeout=30)
    scheduled, starts, completed = await attempts(handle, render)
    assert (scheduled, completed) == (1, True) and starts[-1] >= 2, starts
