"""`t2m up`: owns a Temporal dev server (Web UI on, SQLite in the data dir) and a worker."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus

from cli.stack import wait_for_temporal
from t2m.config import Settings
from t2m.vocabulary.job import VideoResult
from t2m.vocabulary.request import VideoRequest
from tests.helpers import free_port, readme_walkthrough, start_up, stop_up
from workflows.client import start_video
from workflows.worker_liveness import queue_pollers


def up_env(tmp_path: Path) -> tuple[dict[str, str], Settings, int, int]:
    """`t2m up`'s environment on fresh loopback ports: (env, settings, UI port, API port)."""
    grpc, ui, api = free_port(), free_port(), free_port()
    env = os.environ | {
        "T2M_DATA_DIR": str(tmp_path / "data"),
        "T2M_TEMPORAL_ADDRESS": f"127.0.0.1:{grpc}",
        "T2M_TEMPORAL_UI_PORT": str(ui),
        "T2M_API_PORT": str(api),
    }
    return env, Settings(data_dir=tmp_path / "data", temporal_address=f"127.0.0.1:{grpc}"), ui, api


def ui_workflows(ui_port: int, query: str) -> list[dict]:
    url = f"http://127.0.0.1:{ui_port}/api/v1/namespaces/t2m/workflows?" + urllib.parse.urlencode(
        {"query": query}
    )
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r).get("executions", [])


def decode(payload: dict) -> object:
    return json.loads(base64.b64decode(payload["data"]))


async def test_up_serves_the_ui_persists_jobs_and_stops_cleanly(tmp_path: Path) -> None:
    env, settings, ui, api = up_env(tmp_path)
    proc = start_up(env)
    try:
        client = await wait_for_temporal(settings, timeout_s=10)
        req = VideoRequest(
            topic="Ocean tides", model="offline/templates", quality="low", owner="kim"
        )
        handle = await start_video(client, settings, req)
        executions: list[dict] = []
        for _ in range(50):  # visibility is eventually consistent
            executions = ui_workflows(ui, 'T2mTopic="Ocean tides" AND T2mOwner="kim"')
            if executions:
                break
            await asyncio.sleep(0.2)
        assert [e["execution"]["workflowId"] for e in executions] == [handle.id]
        fields = executions[0]["searchAttributes"]["indexedFields"]
        assert decode(fields["T2mQuality"]) == "low"
        assert decode(fields["T2mModel"]) == "offline/templates"
        assert "T2mStage" in fields
        with urllib.request.urlopen(f"http://127.0.0.1:{api}/health", timeout=10) as r:
            health = json.load(r)
        assert health["status"] == "ok" and set(health.values()) == {"ok"}
        assert {"database", "workers_render"} <= set(health)
        await handle.cancel()

        walk = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-euo", "pipefail", "-c", readme_walkthrough()],
            env=os.environ | {"T2M_API": f"http://127.0.0.1:{api}"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert walk.returncode == 0, walk.stdout + walk.stderr
        assert "\ncompleted completed 100.0\n" in walk.stdout
        assert "range request: HTTP 206" in walk.stdout
        job = re.search(r"job: (video-\S+)", walk.stdout).group(1)
        assert (tmp_path / f"{job}.mp4").stat().st_size > 100_000
        assert (tmp_path / f"{job}.vtt").read_text().startswith("WEBVTT")
    finally:
        assert stop_up(proc) == 0
    assert subprocess.run(
        ["pgrep", "-f", "--", f"--port {settings.temporal_address.rsplit(':', 1)[1]}"],
        capture_output=True,
    ).returncode
    pg = subprocess.run(["pgrep", "-f", "--", f"-D {tmp_path}"], capture_output=True)
    assert pg.returncode == 1, "the embedded PostgreSQL must stop with the stack"

    proc = start_up(env)  # jobs survive a restart: the server keeps them in the data dir
    try:
        client = await wait_for_temporal(settings, timeout_s=10)
        desc = await client.get_workflow_handle(handle.id).describe()
        assert desc.status in (WorkflowExecutionStatus.CANCELED, WorkflowExecutionStatus.RUNNING)
    finally:
        assert stop_up(proc) == 0
    assert (tmp_path / "data" / "temporal.db").exists()


def child_pid(up: subprocess.Popen, needle: str) -> int | None:
    """The pid of the `t2m up` child whose command line contains `needle`."""
    out = subprocess.run(["pgrep", "-P", str(up.pid), "-a"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        pid, _, cmd = line.partition(" ")
        if needle in cmd:
            return int(pid)
    return None


async def replaced(up: subprocess.Popen, needle: str, old: int, timeout_s: float = 30) -> int:
    for _ in range(int(timeout_s * 10)):
        pid = child_pid(up, needle)
        if pid is not None and pid != old:
            return pid
        await asyncio.sleep(0.1)
    raise AssertionError(f"{needle} was not restarted")


async def health_ok(api: int, timeout_s: float) -> float:
    """Seconds until /health answers 200; on timeout, its last answer (which check was not ok)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    last = "none"
    while loop.time() - start < timeout_s:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api}/health", timeout=3) as r:
                if r.status == 200:
                    return loop.time() - start
        except urllib.error.HTTPError as e:
            last = f"{e.code} {e.read().decode()}"
        except OSError as e:
            last = f"{type(e).__name__}: {e}"
        await asyncio.sleep(0.25)
    raise AssertionError(f"/health not back within {timeout_s} s; its last answer: {last}")


async def polling(client: Client, settings: Settings, pid: int, timeout_s: float) -> float:
    """Seconds until the worker process `pid` polls every t2m task queue (pollers are named
    `pid@host`, the SDK's default identity). /health cannot tell: a killed worker's pollers stay
    listed (POLLER_FRESH_S), so it answers 200 before its replacement is up."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        pollers = await queue_pollers(client, settings)
        missing = [
            kind
            for kind, listed in pollers.items()
            if not any(p.identity.startswith(f"{pid}@") for p in listed)
        ]
        if not missing:
            return loop.time() - start
        if loop.time() - start > timeout_s:
            seen = {kind: [p.identity for p in listed] for kind, listed in pollers.items()}
            raise AssertionError(f"worker {pid} polls no {missing} after {timeout_s} s: {seen}")
        await asyncio.sleep(0.25)


async def test_up_restarts_a_killed_worker_and_temporal_and_jobs_complete(tmp_path: Path) -> None:
    env, settings, ui, api = up_env(tmp_path)
    proc = start_up(env)
    try:
        client = await wait_for_temporal(settings, timeout_s=10)
        handles = [
            await start_video(
                client,
                settings,
                VideoRequest(topic=topic, model="offline/templates", quality="low", owner="kim"),
            )
            for topic in ("Ocean tides", "Prime numbers")
        ]
        # The supervisor starts the worker once Temporal and PostgreSQL answer: seconds later on
        # a busy host.
        worker = await replaced(proc, "-m worker", old=0)
        await asyncio.sleep(4)  # mid-job: plans written, renders under way
        os.kill(worker, signal.SIGKILL)
        worker = await replaced(proc, "-m worker", worker)
        # Temporal is killed under a worker that is up, so that it has to reconnect. Its cold
        # start is ~5.7 s of CPU (imports, litellm's most): 9-17 s at load 6-10 on 2 cores.
        await polling(client, settings, worker, 45)
        temporal = child_pid(proc, "start-dev")
        assert temporal is not None
        os.kill(temporal, signal.SIGKILL)
        await replaced(proc, "start-dev", temporal)
        # The new server answers 1.5-2 s after its restart; the API's client and the worker's
        # pollers come back at once, the render queue's when a render ends (the worker polls
        # only with a slot free): 2.1-6.0 s at load 6-10 on 2 cores.
        assert await health_ok(api, 15) < 15

        client = await wait_for_temporal(settings, timeout_s=30)
        for h in handles:
            handle = client.get_workflow_handle(h.id, result_type=VideoResult)
            result = await asyncio.wait_for(handle.result(), 240)
            assert result.artifacts.video_key and result.scenes >= 3
            retried = 0
            async for event in handle.fetch_history_events():
                started = event.activity_task_started_event_attributes
                if event.HasField("activity_task_started_event_attributes"):
                    retried += started.attempt > 1
            # only what was in flight at a kill runs again: at most the render slots and a few
            # model calls per job, never the finished work
            assert retried <= 6, f"{retried} activities ran more than once"
    finally:
        assert stop_up(proc) == 0
