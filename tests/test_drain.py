"""Graceful drain: SIGTERM lets a worker's in-flight render finish (run once, attempt 1) and the
process exits within its drain limit; past the limit the render is cancelled and runs again. The
API on SIGTERM ends its event streams at once and lets a download in flight finish."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle

from cli.stack import wait_for_temporal
from t2m import scratch
from t2m.catalog import db
from t2m.catalog.storage import get_storage
from t2m.config import DRAIN_MARGIN_S, Settings
from t2m.vocabulary.job import JobRecord, JobStatus
from t2m.vocabulary.plan import Artifacts
from t2m.vocabulary.request import VideoRequest
from tests.helpers import (
    api_process,
    catalog_request,
    cli_env,
    descendants,
    gone,
    runners_under,
    start_up,
    stop_up,
)
from tests.test_stack import up_env
from workflows.client import start_video

REQUEST = VideoRequest(
    topic="Fractions",
    context="A fraction is a part of a whole. The denominator counts the parts. "
    "The numerator counts the parts we take.",
    model="offline/templates",
    quality="medium",  # renders of several seconds: long enough to be caught in flight
)


def start_worker(
    settings: Settings,
    log: Path,
    drain_s: float,
    python: str = sys.executable,
    cwd: str = ".",
    **env_vars: str,
) -> subprocess.Popen:
    env = cli_env(settings, T2M_RENDER_CONCURRENCY="1", T2M_WORKER_DRAIN_S=str(drain_s), **env_vars)
    return subprocess.Popen(
        [python, "-m", "worker"],
        env=env,
        cwd=cwd,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def render_in_flight(
    handle: WorkflowHandle, worker: subprocess.Popen, timeout_s: float = 120
) -> str:
    """The activity id of a render_scene that `worker` is running and has not finished: started,
    and the worker has a render jail running. "Started" alone is the server's word for a task
    handed to a poller, which may still be on its way into the worker (one SIGTERMed then never
    runs it: the task waits for its heartbeat timeout and runs elsewhere). The jail is seen
    within a fraction of a second of the start, where the first heartbeat comes after 2 s: a
    short render found by its heartbeat could end before the test acts on it. (Each worker here
    renders one scene at a time.)"""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        desc = await handle.describe()
        for p in desc.raw_description.pending_activities:
            if (
                p.activity_type.name == "render_scene"
                and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                and runners_under(worker.pid)
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


async def still_pending(handle: WorkflowHandle, activity_id: str) -> str | None:
    """How `activity_id` is still pending (state, attempt, last failure), or None once it has
    ended. The workflow's pending activities change as the activity ends; its history may not
    yet: the server holds an activity's events back while a workflow task is in flight, and a
    worker that drains can leave one in flight (Temporal's SDK drops a workflow task it is handed
    as it shuts down; the server times it out after 10 s and hands it to another worker)."""
    desc = await handle.describe()
    for p in desc.raw_description.pending_activities:
        if p.activity_id == activity_id:
            state = PendingActivityState.Name(p.state)
            return f"{state}, attempt {p.attempt}, last failure: {p.last_failure.message or 'none'}"
    return None


async def read_all(frames: AsyncIterator[str]) -> str:
    return "".join([f async for f in frames])


def proc_state(pid: int) -> str:
    """The state letter in /proc/<pid>/stat ("Z": exited, not yet reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


async def test_sigterm_lets_the_render_in_flight_finish_once(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    drain_s = 90.0  # well above a render's time, even on a busy machine
    first = start_worker(settings, tmp_path / "worker1.log", drain_s)
    try:
        handle = await start_video(client, settings, REQUEST)
        render = await render_in_flight(handle, first)
        code, took = await stop_and_time(first, drain_s + DRAIN_MARGIN_S)
    finally:
        if first.poll() is None:
            first.kill()
    print(f"\nSIGTERM to exit with a render in flight: {took:.2f} s (drain limit {drain_s:g} s)")
    log = (tmp_path / "worker1.log").read_text()
    assert code == 0, log[-3000:]
    assert took < drain_s, "the worker must exit once its work is done, within the drain limit"
    assert "in-flight activities have 90 s to finish" in log
    left = await still_pending(handle, render)
    assert left is None, f"render {render} did not end in the drained worker: {left}\n{log[-3000:]}"

    second = start_worker(settings, tmp_path / "worker2.log", drain_s)
    try:
        result = await asyncio.wait_for(handle.result(), timeout=240)
    finally:
        second.terminate()
        second.wait(timeout=drain_s + DRAIN_MARGIN_S)
    assert result.scenes >= 3
    runs = await attempts(handle, render)
    assert runs == (1, [1], True), f"render {render} ran once, as attempt 1: {runs}\n{log[-3000:]}"


async def test_past_the_drain_limit_the_render_is_cancelled_and_runs_again(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    drain_s = 0.5  # shorter than any render at this quality
    first = start_worker(settings, tmp_path / "worker1.log", drain_s)
    try:
        handle = await start_video(client, settings, REQUEST)
        render = await render_in_flight(handle, first)
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


async def test_a_second_signal_exits_at_once_and_leaves_the_scratch_dir_to_the_next_sweep(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    """A forced stop does not delete files its renders may still be writing: its scratch dir
    stays, locked until the process is gone, and the next worker's sweep removes it."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    handle = await start_video(client, settings, REQUEST)
    worker = start_worker(settings, tmp_path / "worker.log", 90.0, TMPDIR=str(tmp))
    try:
        await render_in_flight(handle, worker)
        worker.terminate()
        await asyncio.sleep(0.5)
        code, _ = await stop_and_time(worker, DRAIN_MARGIN_S + 5)  # the second signal
    finally:
        if worker.poll() is None:
            worker.kill()
        await handle.cancel()
    assert code == 1, (tmp_path / "worker.log").read_text()[-3000:]
    [left] = tmp.glob(f"{scratch.PREFIX}*")
    assert list(left.glob("t2m-render-*")), "the render's dir was removed under it"
    assert scratch.sweep(tmp) == [left] and list(tmp.iterdir()) == []


async def test_the_api_ends_event_streams_and_finishes_downloads_on_sigterm(
    settings: Settings, jobs: db.JobStore
) -> None:
    owner = "local"  # the dev identity of the API process
    running = await jobs.create(f"video-{uuid.uuid4()}", catalog_request(owner), "normal")
    await jobs.record(
        JobRecord(
            job_id=running.id,
            owner=owner,
            request=running.request,
            status="running",
            progress=JobStatus(job_id=running.id, status="running", percentage=40),
        )
    )
    done = await jobs.create(f"video-{uuid.uuid4()}", catalog_request(owner), "normal")
    video = settings.data_dir / "big.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    video.write_bytes(os.urandom(1 << 20) * 64)  # far more than the socket buffers hold
    get_storage(settings).put_file(f"jobs/{done.id}/video.mp4", video)
    await jobs.record(
        JobRecord(
            job_id=done.id,
            owner=owner,
            request=done.request,
            status="completed",
            progress=JobStatus(job_id=done.id, status="completed", percentage=100),
            artifacts=Artifacts(video_key=f"jobs/{done.id}/video.mp4", duration_s=1),
        )
    )
    async with (
        api_process(settings) as (url, pid),
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        events = f"/api/v1/videos/jobs/{running.id}/events"
        download = f"/api/v1/videos/jobs/{done.id}/download"
        async with http.stream("GET", events) as sse, http.stream("GET", download) as dl:
            frames = sse.aiter_text()
            assert (await anext(frames)).startswith("event: status")
            chunks = dl.aiter_bytes()
            received = len(await anext(chunks))
            start = time.monotonic()
            os.kill(pid, signal.SIGTERM)
            rest = await asyncio.wait_for(read_all(frames), timeout=10)
            ended = time.monotonic() - start
            async for chunk in chunks:  # the download in flight goes on to its end
                received += len(chunk)
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists() or "Z" in proc_state(pid):
                break
            await asyncio.sleep(0.05)
        exited = time.monotonic() - start
    print(
        f"\nAPI on SIGTERM: event stream ended after {ended:.2f} s, process gone after {exited:.2f} s"
    )
    assert "reconnect" in rest and ended < 2
    assert received == video.stat().st_size
    assert exited < 5


async def test_a_killed_up_leaves_no_process_behind(tmp_path: Path) -> None:
    env, settings, _, _ = up_env(tmp_path)
    up = start_up(env)
    try:
        client = await wait_for_temporal(settings, timeout_s=10)
        handle = await start_video(client, settings, REQUEST)
        await render_in_flight(handle, up)  # the jail's processes are descendants of `t2m up`
        postmaster = int((tmp_path / "data/postgres/postmaster.pid").read_text().split()[0])
        # A render activity also uploads and joins between its jails: wait for a moment when a
        # jail runs, so that the kill below catches one.
        parts = ("start-dev", "-m worker", "uvicorn", "bin/postgres", "bwrap")
        deadline = time.monotonic() + 60
        while True:
            pids = descendants([up.pid, postmaster])
            commands = " ".join(_cmdline(pid) for pid in pids)
            missing = [part for part in parts if part not in commands]
            if not missing or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert missing == [], f"{missing} not among the processes t2m up started"
        up.kill()
        up.wait()
        start = time.monotonic()
        left = await gone(pids, timeout_s=10)
        print(
            f"\nt2m up SIGKILLed: its {len(pids) - 1} processes gone in {time.monotonic() - start:.2f} s"
        )
    finally:
        if up.poll() is None:
            up.kill()
    assert left == [], [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # gone since it was listed
        return ""


async def test_up_drains_the_worker_on_sigterm(tmp_path: Path) -> None:
    env, settings, _, _ = up_env(tmp_path)
    env |= {"T2M_WORKER_DRAIN_S": "90", "T2M_RENDER_CONCURRENCY": "1"}
    up = start_up(env)
    try:
        client = await wait_for_temporal(settings, timeout_s=10)
        handle = await start_video(client, settings, REQUEST)
        render = await render_in_flight(handle, up)
        start = time.monotonic()
        up.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(up.wait, 120)
        took = time.monotonic() - start
    finally:
        if up.poll() is None:
            up.kill()
    print(f"\nt2m up SIGTERM with a render in flight: stopped in {took:.2f} s")
    assert code == 0 and took < 90
    up = start_up(env)  # the job goes on after a restart, its render done once
    try:
        client = await wait_for_temporal(settings, timeout_s=10)
        handle = client.get_workflow_handle(handle.id)
        await asyncio.wait_for(handle.result(), timeout=240)
        assert await attempts(handle, render) == (1, [1], True)
    finally:
        assert stop_up(up) == 0
