"""End-to-end speed and memory of t2m, measured in one run on a fresh stack, against its goals.

Run: .venv/bin/python bench/pipeline_bench.py   (as root, like the worker; ~5 minutes on 2 cores)

It starts its own Temporal dev server, embedded PostgreSQL, a worker and the API (loopback, fresh
data dir), makes offline 4-scene videos and prints each figure with its goal:

- wall / summed activity time of a 720p job (how much the stages overlap),
- that job's time from submit to its first playable scene / to its whole video,
- compose's share of that job's wall time (720p and 1080p),
- an identical resubmit's wall / the first run's (the whole-result cache),
- a retry after the job stopped with 3 of 4 scenes done / the first run's wall,
- status latency p50/p99 and errors with 50 pollers while 10 jobs run,
- the worker's peak RSS during a 1080p job (a fresh worker, so the peak is that job's),
- a sequential in-process baseline (the same plain functions, one after another) / t2m's wall,
- a split render's wall over 2 render slots / the whole render's on 1 (`bench/split_bench.py`:
  one 1080p60 scene of 10 animations).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from split_bench import split_over_two_slots
from status_pollers import poller
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.media import min_seconds
from cli.stack import dev_server_flags, temporal_binary
from t2m.authoring import steps as authoring
from t2m.authoring.llm import ModelClient
from t2m.catalog import local_postgres
from t2m.config import Settings
from t2m.media import compose as media
from t2m.media import speech as tts
from t2m.render import sandbox
from t2m.requests import build_request
from t2m.vocabulary.plan import Cue
from t2m.vocabulary.request import VideoOptions
from workflows.client import ensure_search_attributes, job_status, start_video

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "Pythagorean Theorem"
CONTEXT = (
    "The hypotenuse is the longest side of a right triangle, opposite the right angle. "
    "In a right triangle, a^2 + b^2 = c^2."
)
"""Four scenes with the offline model: title, key idea, formula, summary (the issue's job)."""
GOALS = {
    "wall / summed activity time (720p)": ("<=", 0.60),
    "first playable scene / whole video (720p)": ("<=", 0.40),
    "compose share of wall (720p)": ("<=", 0.05),
    "compose share of wall (1080p)": ("<=", 0.05),
    "identical resubmit / first run": ("<=", 0.10),
    "retry with 3 of 4 scenes done / first run": ("<=", 0.35),
    "status p99 ms (50 pollers, 10 jobs)": ("<=", 25.0),
    "status errors": ("<=", 0),
    "worker peak RSS MB (1080p job)": ("<=", 400.0),
    "sequential baseline / t2m wall (720p)": (">=", 1.0),
    "split over 2 render slots / whole on 1 (1080p60)": ("<=", 0.60),
}


def port() -> int:
    return random.randint(20_000, 32_000)


class Stack:
    """Temporal, PostgreSQL, a worker process and the API process, on loopback."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.api_port = port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    async def start(self) -> None:
        self.env = await WorkflowEnvironment.start_local(
            namespace="t2m",
            data_converter=pydantic_data_converter,
            dev_server_existing_path=temporal_binary(),
            dev_server_log_level="error",
            dev_server_extra_args=dev_server_flags(),
            ip="127.0.0.1",
            port=port(),
        )
        await ensure_search_attributes(self.env.client)
        self.postgres, url = await local_postgres.start_embedded(self.data)
        self.settings = Settings(
            data_dir=self.data,
            database_url=url,
            temporal_address=self.env.client.service_client.config.target_host,
            api_port=self.api_port,
        )
        self.environ = os.environ | {
            "T2M_DATA_DIR": str(self.data),
            "T2M_DATABASE_URL": url,
            "T2M_TEMPORAL_ADDRESS": self.settings.temporal_address,
            "T2M_API_PORT": str(self.api_port),
        }
        self.start_worker()
        api = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app"]
        api += ["--host", "127.0.0.1", "--port", str(self.api_port), "--no-access-log"]
        self.procs["api"] = self._spawn(api, "api.log")
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                try:
                    if (await http.get(f"{self.api}/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the stack did not come up; see {self.data}/*.log")

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def client(self) -> Client:
        return self.env.client

    def _spawn(self, cmd: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(self.data / log, "ab") as out:
            return subprocess.Popen(cmd, cwd=ROOT, env=self.environ, stdout=out, stderr=out)

    def start_worker(self) -> None:
        if "worker" in self.procs:
            self.procs["worker"].terminate()
            self.procs["worker"].wait()
        self.procs["worker"] = self._spawn([sys.executable, "worker.py"], "worker.log")

    def worker_peak_mb(self) -> float:
        status = Path(f"/proc/{self.procs['worker'].pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    async def stop(self) -> None:
        """Stop what has started (all of it, or what a failed `start` had got to)."""
        for proc in self.procs.values():
            proc.terminate()
            proc.wait()
        if hasattr(self, "env"):
            await self.env.shutdown()
        if hasattr(self, "postgres"):
            self.postgres.cleanup()


async def run_job(stack: Stack, quality: str, **options: Any) -> tuple[WorkflowHandle, float]:
    opts = VideoOptions.model_validate(
        {"topic": TOPIC, "context": CONTEXT, "quality": quality, **options}
    )
    req = build_request(stack.settings, opts, owner="bench")
    start = time.perf_counter()
    handle = await start_video(stack.client, stack.settings, req)
    await handle.result()
    return handle, time.perf_counter() - start


async def run_watched(stack: Stack, quality: str) -> tuple[WorkflowHandle, float, float]:
    """`run_job`, also timing when the first scene is playable (its status names a preview)."""
    opts = VideoOptions.model_validate({"topic": TOPIC, "context": CONTEXT, "quality": quality})
    req = build_request(stack.settings, opts, owner="bench")
    start = time.perf_counter()
    handle = await start_video(stack.client, stack.settings, req)
    result = asyncio.ensure_future(handle.result())
    first_scene = None
    while first_scene is None and not result.done():
        if any(s.preview_key for s in (await job_status(handle)).scenes):
            first_scene = time.perf_counter() - start
        await asyncio.sleep(0.2)
    await result
    wall = time.perf_counter() - start
    return handle, wall, wall if first_scene is None else first_scene


async def activity_times(handle: WorkflowHandle) -> dict[str, float]:
    """Seconds each activity type ran (start to completion, summed over its runs)."""
    started: dict[int, Any] = {}
    kinds: dict[int, str] = {}
    spent: dict[str, float] = {}
    async for e in handle.fetch_history_events():
        if e.HasField("activity_task_scheduled_event_attributes"):
            kinds[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
        elif e.HasField("activity_task_started_event_attributes"):
            started[e.activity_task_started_event_attributes.scheduled_event_id] = e.event_time
        elif e.HasField("activity_task_completed_event_attributes"):
            done = e.activity_task_completed_event_attributes
            began = started[done.scheduled_event_id].ToDatetime()
            kind = kinds[done.scheduled_event_id]
            spent[kind] = spent.get(kind, 0.0) + (e.event_time.ToDatetime() - began).total_seconds()
    return spent


async def retry_after_three_scenes(stack: Stack, first_wall: float) -> float:
    """Stop a job once 3 of its 4 scenes are done, then time the retry through the API."""
    async with httpx.AsyncClient(base_url=stack.api, timeout=30) as http:
        body = {"configuration": {"topic": f"{TOPIC} again", "context": CONTEXT,
                                  "quality": "medium", "force": True}}  # fmt: skip
        job = (await http.post("/api/v1/videos/generate", json=body)).json()["job_id"]
        handle = stack.client.get_workflow_handle(job)
        while sum(s.state == "done" for s in (await job_status(handle)).scenes) < 3:
            await asyncio.sleep(0.1)
        await http.post(f"/api/v1/jobs/{job}/cancel")
        while (await http.get(f"/api/v1/videos/jobs/{job}/status")).json()["status"] != "cancelled":
            await asyncio.sleep(0.1)
        start = time.perf_counter()
        for _ in range(100):
            if (await http.post(f"/api/v1/jobs/{job}/retry")).status_code == 202:
                break
            await asyncio.sleep(0.1)
        while (await http.get(f"/api/v1/videos/jobs/{job}/status")).json()["status"] != "completed":
            await asyncio.sleep(0.05)
        return (time.perf_counter() - start) / first_wall


async def status_under_load(stack: Stack) -> tuple[float, float, int]:
    """p50 and p99 (ms) and errors of status calls by 50 pollers while 10 low-quality jobs run."""
    async with httpx.AsyncClient(base_url=stack.api, timeout=30) as http:
        jobs = []
        for i in range(10):
            body = {"configuration": {"topic": f"Load topic {i}", "quality": "low", "force": True}}
            jobs.append((await http.post("/api/v1/videos/generate", json=body)).json()["job_id"])
        paths = [f"/api/v1/videos/jobs/{job}/status" for job in jobs]
        stop = time.perf_counter() + 20
        polled = await asyncio.gather(
            *(poller(stack.api_port, paths, lambda: time.perf_counter() >= stop) for _ in range(50))
        )
        for job in jobs:
            await http.post(f"/api/v1/jobs/{job}/cancel")
    latencies = [ms for each, _ in polled for ms in each]
    q = statistics.quantiles(latencies, n=100)
    return q[49], q[98], sum(n for _, codes in polled for code, n in codes.items() if code != 200)


async def sequential_baseline(quality: str, work: Path) -> float:
    """The same pipeline as plain function calls, one after another, no Temporal."""
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    client, model = ModelClient(None), "offline/templates"
    plan, _ = await authoring.plan_video(client, model, TOPIC, CONTEXT)
    inputs = []
    for scene in plan.scenes:
        board, _ = await authoring.storyboard_scene(client, model, TOPIC, scene, len(plan.scenes))
        if board.narration:
            scene = scene.model_copy(update={"narration": board.narration})
        wav: Path | None = None
        spoken, cues = 0.0, list[Cue]()
        if scene.narration.strip():  # a scene with nothing to say is silent, as in t2m
            wav = work / f"{scene.index}.wav"
            spoken, cues = tts.synthesize(scene.narration, "en-us", wav)
        code, _ = await authoring.write_scene_code(
            client, model, TOPIC, scene, len(plan.scenes), board, None, cues
        )
        result = await sandbox.render(
            code,
            quality,
            work / f"scene-{scene.index}",
            timeout_s=300,
            cpu_s=600,
            min_seconds=min_seconds(spoken),  # as long as its narration, like t2m's
            scene_class=authoring.class_name(scene),
        )
        assert result.ok and result.video, result.error
        inputs.append(media.SceneInput(result.video, wav, spoken, cues))
    composed = media.compose(inputs, work / "video.mp4", subtitles=True)
    media.thumbnail(work / "video.mp4", work / "thumb.png", composed.duration / 2)
    return time.perf_counter() - start


async def main() -> None:
    figures: dict[str, float] = {}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="t2m-bench-") as tmp:
        stack = Stack(Path(tmp) / "data")
        stack.data.mkdir()
        await stack.start()
        try:
            first, wall, first_scene = await run_watched(stack, "medium")
            spent = await activity_times(first)
            figures["wall / summed activity time (720p)"] = wall / sum(spent.values())
            figures["first playable scene / whole video (720p)"] = first_scene / wall
            figures["first playable scene s (720p)"] = first_scene
            figures["compose share of wall (720p)"] = spent["compose_video"] / wall
            _, again = await run_job(stack, "medium")
            figures["identical resubmit / first run"] = again / wall
            figures["retry with 3 of 4 scenes done / first run"] = await retry_after_three_scenes(
                stack, wall
            )
            p50, p99, errors = await status_under_load(stack)
            figures["status p50 ms (50 pollers, 10 jobs)"] = p50
            figures["status p99 ms (50 pollers, 10 jobs)"] = p99
            figures["status errors"] = errors
            stack.start_worker()  # a fresh worker: its peak is the 1080p job's
            await asyncio.sleep(3)
            hd, hd_wall = await run_job(stack, "high", force=True)
            figures["worker peak RSS MB (1080p job)"] = stack.worker_peak_mb()
            figures["compose share of wall (1080p)"] = (await activity_times(hd))[
                "compose_video"
            ] / hd_wall
            baseline = await sequential_baseline("medium", Path(tmp) / "baseline")
            figures["sequential baseline / t2m wall (720p)"] = baseline / wall
            figures["first run wall s (720p)"] = wall
            walls = await split_over_two_slots()
            split_figure = "split over 2 render slots / whole on 1 (1080p60)"
            figures[split_figure] = walls["split"] / walls["whole"]
            notes[split_figure] = (
                f"whole {walls['whole']:.1f} s, split {walls['split']:.1f} s, "
                f"load average {walls['load before']:.2f} -> {walls['load after']:.2f}"
            )
            if "floor" in walls:
                notes[split_figure] += f", the least its CPU allows {walls['floor']:.3f}"
        finally:
            await stack.stop()
    print(f"{'figure':48} {'value':>10}  goal")
    for name, value in figures.items():
        goal = GOALS.get(name)
        mark = ""
        if goal:
            op, target = goal
            ok = value <= target if op == "<=" else value >= target
            mark = f"{op} {target:g}  {'ok' if ok else 'MISSED'}"
        note = f"  ({notes[name]})" if name in notes else ""
        print(f"{name:48} {value:10.3f}  {mark}{note}")
    sys.stdout.flush()
    os._exit(0)  # sdk-python#300


if __name__ == "__main__":
    asyncio.run(main())
