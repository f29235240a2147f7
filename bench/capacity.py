"""What one job costs the rest of the system, and what saturates first with many jobs queued.

Run: .venv/bin/python bench/capacity.py [--jobs 200] [--pollers 10] [--time-limit S] [--reuse]
     [--json]
(as root, like the worker)

It starts its own stack (`pipeline_bench.Stack`: Temporal dev server, embedded PostgreSQL, one
worker process serving every queue, the API; loopback, fresh data dir), waits until the worker
polls every queue (its start is no job's cost), submits N low-quality offline jobs at once (the
topics of bench/topics.json in turn, each with its own accent colour so that every job renders
(renders are found by their code; `--reuse`: the jobs after each topic's first reuse its scenes'
renders), `force`; four owners, so the fair queues have keys to alternate), polls their status through the API with `--pollers` status pages while
they run (0: the jobs' cost alone), and reports:

- throughput: jobs per minute, video seconds per CPU second (all processes);
- CPU seconds per job by process: API, worker main process, renders (every process the worker
  starts: render, media and probe jails, espeak-ng; from a cgroup of the worker's own,
  `TreeCPU`, else sampled), Temporal, PostgreSQL; `orchestration_share` is the CPU outside the
  renders over all CPU;
- history events (by type, and the activities by name) and catalog writes (PostgreSQL row
  inserts/updates/deletes) per job;
- status p99 and answers by HTTP status; queue wait per job (time its workflow and activity tasks
  waited to be picked up) and its mean per owner (fairness);
- peak RSS per process;
- when each resource first saturated: host CPU (>= 95% busy, every second), a task queue with a
  backlog (every BACKLOG_EVERY_S; render: the render slots; video: the workflow worker; llm),
  status p99 over 1 s.

`--time-limit S` stops after S seconds and reports over the jobs done by then. `--json` prints the
same numbers as one JSON object on the last line, so runs compare. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from pipeline_bench import Stack
from status_pollers import poller
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from tree_cpu import TreeCPU

from t2m.jail.limits import CLK_TCK, tree_stats
from t2m.requests import build_request
from t2m.vocabulary.request import VideoOptions
from workflows.client import start_video

ROOT = Path(__file__).resolve().parent.parent
OWNERS = ("ana", "ben", "chen", "dara")
POLLERS = 10
BACKLOG_EVERY_S = 5
JAIL_SAMPLE_S = 0.1
PROGRESS_EVERY_S = 30
"""Describing the 4 task queues with their stats costs the Temporal server ~16 ms of CPU (measured
on an idle stack, where it idles at ~9 ms/s): every second it would be the bench's own load."""
QUEUES = {
    "video": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "llm": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    "render": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    "media": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


def cpu_of(proc: psutil.Process) -> tuple[float, float]:
    """(own CPU s, CPU s of its descendants: the live ones' own and what they reaped, and what
    it reaped itself) of a process."""
    t = proc.cpu_times()
    kids = t.children_user + t.children_system
    for child in proc.children(recursive=True):
        try:
            c = child.cpu_times()
            kids += c.user + c.system + c.children_user + c.children_system
        except psutil.NoSuchProcess:
            pass
    return t.user + t.system, kids


def processes(stack: Stack) -> dict[str, psutil.Process]:
    """The stack's processes by role: the Temporal server (a child of this process) and
    PostgreSQL's postmaster (daemonized: found by its data dir)."""
    found = {
        "api": psutil.Process(stack.procs["api"].pid),
        "worker": psutil.Process(stack.procs["worker"].pid),
    }
    for child in psutil.Process().children():
        if "temporal" in " ".join(child.cmdline()):
            found["temporal"] = child
    ours = {
        p.pid: p
        for p in psutil.process_iter(["cmdline"])
        if "postgres" in " ".join(p.info["cmdline"] or [])
        and str(stack.data) in " ".join(p.info["cmdline"] or [])
    }
    for proc in ours.values():
        if proc.ppid() not in ours:  # the postmaster; backends are its children
            found["postgres"] = proc
    return found


def cpu_by_role(
    procs: dict[str, psutil.Process], worker_tree: TreeCPU | None = None
) -> dict[str, float]:
    out: dict[str, float] = {}
    for role, proc in procs.items():
        own, kids = cpu_of(proc)
        if role == "worker":
            out["worker"] = own
            out["renders"] = kids if worker_tree is None else worker_tree.seconds() - own
        else:
            out[role] = own + kids
    return out


def peak_mb(proc: psutil.Process) -> float:
    status = Path(f"/proc/{proc.pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


async def catalog_writes(stack: Stack) -> int:
    import asyncpg

    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        return int(
            await conn.fetchval(
                "select coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) from pg_stat_user_tables"
            )
        )
    finally:
        await conn.close()


async def describe_queues(stack: Stack, report_stats: bool = False) -> dict[str, Any]:
    """Each of the stack's task queues, described (its pollers, and its backlog with stats)."""
    out = {}
    for kind, queue_type in QUEUES.items():
        out[kind] = await stack.client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=stack.client.namespace,
                task_queue=TaskQueue(name=stack.settings.queue(kind)),
                task_queue_type=queue_type,
                report_stats=report_stats,
            )
        )
    return out


async def backlogs(stack: Stack) -> dict[str, int]:
    described = await describe_queues(stack, report_stats=True)
    return {
        kind: d.stats.approximate_backlog_count if d.HasField("stats") else 0
        for kind, d in described.items()
    }


async def workers_polling(stack: Stack) -> None:
    """Wait until the worker polls every queue: its start (imports, connections) is no job's."""
    for _ in range(600):
        polled = [len(d.pollers) > 0 for d in (await describe_queues(stack)).values()]
        if all(polled):
            await asyncio.sleep(1)  # the last poller's start settles
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the worker did not poll every queue in 60 s")


def sample_jails(worker: int, seen: dict[tuple[int, int], float]) -> None:
    """The own CPU s of each of the worker's descendants (its jails) alive now, by (pid, start
    time): the render CPU where the worker has no cgroup of its own (`TreeCPU`), and beside it a
    cross-check. Their CPU does not come back to the worker's tree when they are reaped (bwrap's
    PID namespace), so it is sampled while they run, every JAIL_SAMPLE_S: what a jail burns after
    its last sample is missed, and a jail shorter than that entirely (a lower bound: 9% under
    the cgroup's figure in a 40-job run). The processes are found as the watchdog finds them
    (the threads' children lists), ~1 ms a sample."""
    for pid, stat in tree_stats(worker).items():
        if pid != worker:
            seen[(pid, int(stat[19]))] = (int(stat[11]) + int(stat[12])) / CLK_TCK


async def watch(
    stack: Stack,
    started: float,
    first: dict[str, float],
    stop: asyncio.Event,
    jails: dict[tuple[int, int], float],
) -> None:
    """Record when each resource first saturates (seconds after the submission): host CPU every
    second, task queue backlogs every BACKLOG_EVERY_S; and sample the jails' CPU."""
    psutil.cpu_percent()
    worker = stack.procs["worker"].pid
    ticks = 0
    while not stop.is_set():
        for _ in range(round(1 / JAIL_SAMPLE_S)):
            await asyncio.sleep(JAIL_SAMPLE_S)
            sample_jails(worker, jails)
        ticks += 1
        now = time.perf_counter() - started
        if psutil.cpu_percent() >= 95:
            first.setdefault("host CPU", now)
        if ticks % BACKLOG_EVERY_S:
            continue
        try:
            queued = await backlogs(stack)
        except RPCError:  # the server too busy to describe a queue in time: the next round
            continue
        for kind, n in queued.items():
            if n > 0:
                first.setdefault(f"{kind} task queue backlog", now)


async def history_facts(handle: WorkflowHandle) -> tuple[collections.Counter[str], float]:
    """(its events by type, with the activities by name, seconds its tasks waited to be picked
    up) of a finished job."""
    scheduled: dict[int, float] = {}
    wait, events = 0.0, collections.Counter[str]()
    async for e in handle.fetch_history_events():
        events[EventType.Name(e.event_type).removeprefix("EVENT_TYPE_").lower()] += 1
        at = e.event_time.ToDatetime().timestamp()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            events[f"activity {e.activity_task_scheduled_event_attributes.activity_type.name}"] += 1
        if e.event_type in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        ):
            scheduled[e.event_id] = at
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            wait += at - scheduled.get(
                e.activity_task_started_event_attributes.scheduled_event_id, at
            )
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            wait += at - scheduled.get(
                e.workflow_task_started_event_attributes.scheduled_event_id, at
            )
    return events, wait


def distinct(i: int) -> dict[str, str]:
    """Job `i`'s own accent colour: it is in every scene's code, so no job reuses another's
    renders (they are found by their code)."""
    return {"accent_color": f"#{(i * 0x9E3779) & 0xFFFFFF:06x}"}


async def run(
    jobs: int, pollers: int = POLLERS, time_limit_s: float | None = None, reuse: bool = False
) -> dict[str, Any]:
    topics = json.loads((ROOT / "bench" / "topics.json").read_text())
    with tempfile.TemporaryDirectory(prefix="t2m-capacity-") as tmp:
        stack = Stack(Path(tmp) / "data")
        stack.data.mkdir()
        worker_tree: TreeCPU | None = None
        try:
            await stack.start()
            procs = processes(stack)
            worker_tree = TreeCPU.open(procs["worker"].pid)
            if worker_tree is None:
                print("the worker has no cgroup: its jails are sampled instead", file=sys.stderr)
            await workers_polling(stack)
            cpu0, writes0 = cpu_by_role(procs, worker_tree), await catalog_writes(stack)
            started = time.perf_counter()
            handles: list[tuple[str, WorkflowHandle]] = []
            for i in range(jobs):
                t = topics[i % len(topics)]
                opts = VideoOptions.model_validate(
                    {"topic": t["theorem"], "context": t["description"], "quality": "low",
                     "force": True} | ({} if reuse else {"style_preferences": distinct(i)})
                )  # fmt: skip
                owner = OWNERS[i % len(OWNERS)]
                req = build_request(stack.settings, opts, owner=owner)
                handles.append((owner, await start_video(stack.client, stack.settings, req)))
            first: dict[str, float] = {}
            stop = asyncio.Event()
            jails: dict[tuple[int, int], float] = {}
            watcher = asyncio.create_task(watch(stack, started, first, stop, jails))
            paths = [f"/api/v1/videos/jobs/{h.id}/status" for _, h in handles]
            polling = [
                asyncio.create_task(poller(stack.api_port, paths, stop.is_set))
                for _ in range(pollers)
            ]
            waiting = {asyncio.ensure_future(h.result()): i for i, (_, h) in enumerate(handles)}
            ended: dict[int, Any] = {}
            until = started + (time_limit_s or float("inf"))
            while waiting and time.perf_counter() < until:
                left = until - time.perf_counter()
                done, _ = await asyncio.wait(waiting, timeout=min(PROGRESS_EVERY_S, left))
                ended |= {waiting.pop(f): f.result() for f in done}
                print(f"{len(ended)}/{jobs} jobs done at {time.perf_counter() - started:.0f} s"
                      f" (load {os.getloadavg()[0]:.1f})", file=sys.stderr)  # fmt: skip
            wall = time.perf_counter() - started
            for f in waiting:  # cut at the time limit: the jobs still running count for nothing
                f.cancel()
            handles = [handles[i] for i in sorted(ended)]
            results = [ended[i] for i in sorted(ended)]
            stop.set()
            await watcher
            polled = [await p for p in polling]
            latencies = [ms for times, _ in polled for ms in times]
            cpu1 = cpu_by_role(procs, worker_tree)
            await asyncio.sleep(1.5)  # PostgreSQL flushes a backend's table counts each second
            writes1 = await catalog_writes(stack)
            peaks = {role: peak_mb(p) for role, p in procs.items()}
            facts = [await history_facts(h) for _, h in handles]
            if waiting:  # no drain of the cut jobs' renders (the worker's jails die with it)
                stack.procs["worker"].kill()
        finally:
            await stack.stop()
            if worker_tree is not None:
                worker_tree.close()
    submitted, jobs = jobs, len(results)
    if not jobs:
        raise SystemExit(f"no job finished in the time limit ({wall:.0f} s)")
    cpu = {role: (cpu1[role] - cpu0.get(role, 0.0)) / jobs for role in cpu1}
    sampled = sum(jails.values()) / jobs
    if worker_tree is None:  # a lower bound: what the live jails were seen to burn
        cpu["renders"] = max(cpu["renders"], sampled)
    total = sum(cpu.values())
    video_s = sum(r.artifacts.duration_s for r in results)
    waits = [w for _, w in facts]
    per_owner = {
        o: statistics.mean(w for (owner, _), w in zip(handles, waits, strict=True) if owner == o)
        for o in OWNERS
        if any(owner == o for owner, _ in handles)
    }
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else 0.0
    if p99 > 1000:
        first.setdefault("API status p99 > 1 s", wall)
    return {
        "jobs": submitted,
        "jobs_done": jobs,
        "wall_s": wall,
        "jobs_per_min": jobs / wall * 60,
        "video_s_per_cpu_s": video_s / (total * jobs),
        "cpu_s_per_job": cpu,
        "orchestration_share": (total - cpu["renders"]) / total,
        "render_cpu_from": "the worker's cgroup" if worker_tree else "samples of the live jails",
        "render_cpu_sampled_per_job": sampled,
        "history_events_per_job": statistics.mean(
            sum(n for k, n in e.items() if not k.startswith("activity ")) for e, _ in facts
        ),
        "history_events_by_type_per_job": {
            k: n / jobs
            for k, n in sorted(sum((e for e, _ in facts), collections.Counter()).items())
        },
        "catalog_writes_per_job": (writes1 - writes0) / jobs,
        "status_p99_ms": p99,
        "status_requests": len(latencies),
        "status_answers": dict(sum((codes for _, codes in polled), collections.Counter())),
        "queue_wait_s_per_job": statistics.mean(waits),
        "queue_wait_s_per_owner": per_owner,
        "peak_rss_mb": peaks,
        "first_saturated": min(first, key=first.__getitem__) if first else "none",
        "saturated_at_s": first,
        "host_cores": os.cpu_count(),
        "load_avg_1m_at_end": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs submitted at once (200)")
    parser.add_argument("--pollers", type=int, default=POLLERS, help=f"status pollers ({POLLERS})")
    parser.add_argument(
        "--time-limit",
        type=float,
        help="stop after this many seconds; figures over the jobs done by then (CPU per job is"
        " then an upper bound: the work of the jobs still running counts on the ones done)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="jobs of a topic share their scenes' code, so only each topic's first renders",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
    args = parser.parse_args()
    report = asyncio.run(run(args.jobs, args.pollers, args.time_limit, args.reuse))
    for name, value in report.items():
        if isinstance(value, dict):
            value = ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items()
            )
        elif isinstance(value, float):
            value = f"{value:.3f}"
        print(f"{name:28} {value}")
    if args.json:
        print(json.dumps(report))
    sys.stdout.flush()
    os._exit(0)  # sdk-python#300


if __name__ == "__main__":
    main()
