"""What one status request costs each process of the stack, while nothing else runs.

Run: .venv/bin/python bench/status_cost.py [--jobs 4] [--pollers 10] [--seconds 15] [--rounds 2]
(as root, like the worker)

It starts its own stack (`pipeline_bench.Stack`), then runs its worker on the video queue only, so
that `--jobs` jobs submitted through the API sit running at their first activity (their status
never changes). Then, `--rounds` times: a window with no requests (the stack's idle CPU), one
with `--pollers` status pages polling through the API (`status_pollers.poller`: a random job's
status twice a second), one of status queries and one of describes made directly (a request
every 20 ms, one job after another). It prints, per request of each kind, the CPU ms of each
process (API, worker main process, Temporal, PostgreSQL; from psutil, before and after each
window) over its idle CPU, as one JSON object.

The poll window measures a refresh every `max_age_s` and the answers in between; the direct ones
what the API's refresh asks of Temporal and the worker. The machine is shared: the idle window
subtracted per process is the noisiest part (Temporal idles at 6-13 ms/s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import psutil
from capacity import cpu_by_role, processes
from pipeline_bench import Stack
from status_pollers import poller

GAP_S = 0.02
"""Between direct requests: ~40 a second, about what 10 pages' refreshes made with 0.25 s."""

Window = Callable[[float], Awaitable[int]]


async def measured(
    procs: dict[str, psutil.Process], seconds: float, work: Window
) -> tuple[dict[str, float], int, float]:
    """(CPU s by process, requests made, wall s) of one window."""
    before = cpu_by_role(procs)
    start = time.perf_counter()
    made = await work(seconds)
    wall = time.perf_counter() - start
    after = cpu_by_role(procs)
    return {k: after[k] - before[k] for k in after if k != "renders"}, made, wall


async def running_jobs(stack: Stack, jobs: int) -> list[str]:
    """Submit `jobs` jobs through the API and wait until each runs (its first activity is then
    waiting for the llm queue, which nobody serves)."""
    stack.procs["worker"].terminate()
    stack.procs["worker"].wait()
    stack.procs["worker"] = stack._spawn(
        [sys.executable, "worker.py", "--queues", "video"], "w.log"
    )
    ids = []
    async with httpx.AsyncClient(base_url=stack.api, timeout=30) as http:
        for i in range(jobs):
            body = {"configuration": {"topic": f"Status cost {i}", "quality": "low", "force": True}}
            ids.append((await http.post("/api/v1/videos/generate", json=body)).json()["job_id"])
        for job in ids:
            for _ in range(600):
                answer = await http.get(f"/api/v1/videos/jobs/{job}/status")
                if answer.json()["status"] == "running":
                    break
                await asyncio.sleep(0.2)
    await asyncio.sleep(3)  # the worker's start settles
    return ids


async def run(jobs: int, pollers: int, seconds: float, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp) / "data")
        await stack.start()
        try:
            ids = await running_jobs(stack, jobs)
            procs = processes(stack)
            paths = [f"/api/v1/videos/jobs/{job}/status" for job in ids]
            handles = [stack.client.get_workflow_handle(job) for job in ids]

            async def idle(s: float) -> int:
                await asyncio.sleep(s)
                return 0

            async def polled(s: float) -> int:
                stop = time.perf_counter() + s
                done = await asyncio.gather(
                    *(
                        poller(stack.api_port, paths, lambda: time.perf_counter() >= stop)
                        for _ in range(pollers)
                    )
                )
                return sum(len(latencies) for latencies, _ in done)

            def direct(ask: Callable[[int], Awaitable[object]]) -> Window:
                async def window(s: float) -> int:
                    stop, made = time.perf_counter() + s, 0
                    while time.perf_counter() < stop:
                        await ask(made)
                        made += 1
                        await asyncio.sleep(GAP_S)
                    return made

                return window

            kinds: dict[str, Window] = {
                "idle": idle,
                "poll": polled,
                "query": direct(lambda n: handles[n % jobs].query("status")),
                "describe": direct(lambda n: handles[n % jobs].describe()),
            }
            windows: dict[str, list[tuple[dict[str, float], int, float]]] = {k: [] for k in kinds}
            for _ in range(rounds):
                for kind, work in kinds.items():
                    windows[kind].append(await measured(procs, seconds, work))
        finally:
            await stack.stop()
    idle_wall = sum(wall for _, _, wall in windows["idle"])
    rate = {k: sum(cpu[k] for cpu, _, _ in windows["idle"]) / idle_wall for k in procs}
    report: dict[str, object] = {"idle_ms_per_s": {k: round(v * 1000, 2) for k, v in rate.items()}}
    for kind, made in windows.items():
        if kind == "idle":
            continue
        n, wall = sum(m for _, m, _ in made), sum(w for _, _, w in made)
        ms = {k: (sum(cpu[k] for cpu, _, _ in made) - rate[k] * wall) / n * 1000 for k in procs}
        ms["total"] = sum(ms.values())
        report[kind] = {"requests": n, "ms_per_request": {k: round(v, 2) for k, v in ms.items()}}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--pollers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.jobs, args.pollers, args.seconds, args.rounds))))


if __name__ == "__main__":
    main()
