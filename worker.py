"""The t2m worker: serves the video (workflows), llm and render task queues.

One process can serve all three (the embedded default) or one each (`--queues render`), so CPU-bound
rendering scales separately from cheap orchestration and I/O-bound model calls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.catalog import CatalogActivities
from activities.eval import EvalActivities
from activities.heartbeat import MAX_HEARTBEAT_THROTTLE
from activities.llm import LLMActivities
from activities.media import MediaActivities
from activities.metrics import HISTOGRAM_BUCKETS, MetricsInterceptor
from activities.split import SplitActivities
from t2m import scratch
from t2m.authoring.llm import ModelClient
from t2m.catalog import db
from t2m.catalog.db import JobStore
from t2m.catalog.storage import StorageUnavailable, get_storage
from t2m.catalog.tenancy import Tenancy
from t2m.config import (
    DRAIN_MARGIN_S,
    WORKER_QUEUES,
    InvalidSettings,
    Settings,
    get_settings,
    parse_queues,
    queues_problem,
)
from t2m.jail.limits import JailUnavailable
from t2m.jail.self_test import check_jail
from workflows import deployment
from workflows.activity_table import ACTIVITIES, Queue, on_queue
from workflows.client import connect
from workflows.deployment import deployment_config, deployment_version, promote
from workflows.eval import EvalWorkflow
from workflows.maintenance import ReconcileWorkflow, ensure_reconcile_schedule
from workflows.storage_claim import stack_mismatch
from workflows.video import VideoWorkflow
from workflows.worker_liveness import WORKER_HEARTBEAT

WORKFLOWS: list[type] = [VideoWorkflow, ReconcileWorkflow, EvalWorkflow]
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("litellm")
)
"""The workflow sandbox, with litellm passed through: once a worker has made a model call,
litellm's log filter sits on the `asyncio` logger and imports litellm modules when a record
passes. A record from inside a workflow (asyncio's own, about a workflow task) then re-imported
litellm in the sandbox, which refuses its `os.getenv`: the workflow task failed, again on every
retry, and a cancelled job never ended (`tests/test_worker_sandbox.py`)."""
BLOCKING_NICENESS = 10
"""Blocking work (composing, narrating, storage transfers) runs in threads at this niceness: above
renders (19), below the API, Temporal and this worker's event loop, which answers queries and
heartbeats."""
log = logging.getLogger("t2m.worker")


def _lower_thread_priority() -> None:
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BLOCKING_NICENESS)  # per thread


def build_workers(
    client: Client,
    settings: Settings,
    queues: Sequence[str] = WORKER_QUEUES,
    jobs: JobStore | None = None,
) -> list[Worker]:
    """One Temporal worker per task queue this process serves (`render` brings its sibling
    `media`: the finishing steps run on render hosts), each registering exactly the activities
    `workflows/activity_table.py` puts on its queue. The workflow worker is in this build's
    deployment version (runs are pinned to it); activity workers are not versioned: any
    release's serve any run (activity messages only gain defaulted fields), so render hosts roll
    out on their own."""
    unknown = set(queues) - set(WORKER_QUEUES)
    if unknown:
        raise ValueError(f"unknown queue(s) {sorted(unknown)}; choose from {WORKER_QUEUES}")
    storage = get_storage(settings)
    tenancy = Tenancy(jobs.pool) if jobs is not None else None
    media = MediaActivities(settings, storage, tenancy)
    model_client = ModelClient(storage if settings.llm_cache else None)
    implementations = activity_implementations(
        LLMActivities(
            model_client,
            storage,
            settings.data_dir,
            tenancy,
            settings.share_caches_across_owners,
        ),
        EvalActivities(model_client, storage, jobs, client),
        CatalogActivities(jobs, client, any_owner=settings.share_caches_across_owners),
        media,
        SplitActivities(settings, storage),
    )
    common: dict[str, Any] = {
        "graceful_shutdown_timeout": timedelta(seconds=settings.worker_drain_s),
        # A cancel reaches an activity only in the answer to a heartbeat: send them as often as
        # activities beat, not at the SDK's 0.8 x heartbeat timeout.
        "max_heartbeat_throttle_interval": MAX_HEARTBEAT_THROTTLE,
    }
    workers = []
    if "video" in queues:
        workers.append(
            Worker(
                client,
                task_queue=settings.queue("video"),
                workflows=WORKFLOWS,
                workflow_runner=WORKFLOW_RUNNER,
                deployment_config=deployment_config(deployment_version(settings)),
                **common,
            )
        )
    served: list[Queue] = ["llm"] if "llm" in queues else []
    if "render" in queues:
        served += ["render", "media"]
    for queue in served:
        workers.append(
            Worker(
                client,
                task_queue=settings.queue(queue),
                activities=[implementations[name] for name in on_queue(queue)],
                max_concurrent_activities=settings.llm_concurrency
                if queue == "llm"
                else settings.render_concurrency,
                interceptors=[MetricsInterceptor()],  # t2m's own metrics (activities/metrics.py)
                **common,
            )
        )
    return workers


@contextlib.asynccontextmanager
async def running(
    client: Client,
    settings: Settings,
    queues: Sequence[str] = WORKER_QUEUES,
    jobs: JobStore | None = None,
) -> AsyncIterator[list[Worker]]:
    """`build_workers`, polling until the block ends (then shut down); a worker of the video
    queue makes this build current (`promote`) so that new runs come to it."""
    async with contextlib.AsyncExitStack() as stack:
        workers = build_workers(client, settings, queues, jobs)
        for w in workers:
            await stack.enter_async_context(w)
        if "video" in queues and settings.promote_build:
            await promote(client, deployment_version(settings))
        yield workers


def activity_implementations(*holders: object) -> dict[str, Callable[..., Any]]:
    """Every `@activity.defn` method of `holders`, by activity name; exactly the table's names
    (a missing or extra implementation is a deployment bug, refused at start)."""
    found: dict[str, Callable[..., Any]] = {}
    for holder in holders:
        for attr in dir(holder):
            fn = getattr(holder, attr)
            defn = activity._Definition.from_callable(fn) if callable(fn) else None
            if defn is not None and defn.name is not None:
                found[defn.name] = fn
    table = {a.name for a in ACTIVITIES}
    if set(found) != table:
        raise RuntimeError(
            f"activities without a table entry: {sorted(set(found) - table)};"
            f" table entries without an implementation: {sorted(table - set(found))}"
        )
    return found


async def jail_ready(queues: Sequence[str]) -> list[str]:
    """The queues this host may serve: no render queue unless a render jail can be built here.

    There is no unjailed fallback: without the jail this worker refuses to render (and says why),
    so the API's /health shows the render queue without a worker.
    """
    if "render" not in queues:
        return list(queues)
    try:
        await check_jail()
    except JailUnavailable as e:
        log.error("refusing to serve the render queue: the render jail is unavailable: %s", e)
        return [q for q in queues if q != "render"]
    return list(queues)


def worker_runtime(settings: Settings) -> Runtime:
    """The worker's Temporal runtime: worker heartbeats every `WORKER_HEARTBEAT` (by which
    `/health` tells a killed worker within seconds), and Prometheus metrics on the configured
    port when one is set: the SDK's own (`temporal_*`) and t2m's (`t2m_*`, recorded through the
    SDK's meter)."""
    prometheus = None
    if settings.worker_metrics_port is not None:
        host = settings.worker_metrics_host
        address = f"[{host}]" if ":" in host else host
        prometheus = PrometheusConfig(
            bind_address=f"{address}:{settings.worker_metrics_port}",
            histogram_bucket_overrides=HISTOGRAM_BUCKETS,
        )
    return Runtime(
        telemetry=TelemetryConfig(metrics=prometheus), worker_heartbeat_interval=WORKER_HEARTBEAT
    )


async def run(
    settings: Settings, queues: Sequence[str] = WORKER_QUEUES, adopt_older_builds: bool = False
) -> int:
    """Serve `queues` until SIGINT/SIGTERM, then shut the workers down gracefully: polling stops
    and in-flight activities get `worker_drain_s` to finish. With `adopt_older_builds` (a
    single-host stack restarted on changed workflow code), runs pinned to older builds are
    moved onto this one where their history replays (`workflows/deployment.py`)."""
    asyncio.get_running_loop().set_default_executor(  # where asyncio.to_thread runs blocking work
        ThreadPoolExecutor(thread_name_prefix="t2m-blocking", initializer=_lower_thread_priority)
    )
    try:  # a worker that cannot store its results must not take tasks
        await asyncio.to_thread(get_storage(settings).check)
    except StorageUnavailable as e:
        print(f"t2m worker: refusing to start: {e}", file=sys.stderr)
        return 2
    queues = await jail_ready(queues)
    if not queues:
        return 1
    try:
        client = await connect(settings, worker_runtime(settings))
    except RuntimeError as e:  # the SDK's "Failed client connect: …", with its reason
        print(
            f"t2m worker: cannot reach Temporal at {settings.temporal_address}: {e}",
            file=sys.stderr,
        )
        return 1
    if problem := await stack_mismatch(client, settings, get_storage(settings)):
        print(f"t2m worker: refusing to serve: {problem}", file=sys.stderr)
        return 2
    jobs = None
    if settings.database_url:
        try:
            jobs = JobStore(await db.connect(settings.database_url, settings.migrate_catalog))
        except db.SchemaBehind as e:
            print(f"t2m worker: refusing to start: {e}", file=sys.stderr)
            return 2
    workers = build_workers(client, settings, queues, jobs)
    if "video" in queues and jobs is not None:
        await ensure_reconcile_schedule(client, settings)
    stop, force = asyncio.Event(), asyncio.Event()
    stopped_by: list[signal.Signals] = []
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stopped_by:  # a second signal: do not wait for the drain
            force.set()
        stopped_by.append(sig)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    if "video" in queues and settings.promote_build:
        await promote(client, deployment_version(settings))
        if adopt_older_builds:
            await deployment.adopt_older_builds(client, settings, WORKFLOWS)
    log.info(
        "worker serving %s on %s",
        ", ".join(settings.queue(q) for q in queues),
        settings.temporal_address,
    )
    if settings.worker_metrics_port is not None:
        log.info(
            "worker metrics on http://%s:%d/metrics",
            settings.worker_metrics_host,
            settings.worker_metrics_port,
        )
    await stop.wait()
    return await _drain(workers, tasks, settings.worker_drain_s, force, stopped_by[0])


async def _drain(
    workers: Sequence[Worker],
    tasks: Sequence[asyncio.Task[None]],
    drain_s: float,
    force: asyncio.Event,
    sig: signal.Signals,
) -> int:
    """Stop polling, let in-flight activities finish for up to `drain_s` (the SDK then cancels
    them), and return once done — or after `drain_s` + DRAIN_MARGIN_S, or at a second signal,
    with 1: the caller exits without waiting for what is left (main() does not run asyncio.run's
    cancel-and-wait of leftover tasks)."""
    log.info(
        "stopping: no new tasks; in-flight activities have %g s to finish (signal again to "
        "cancel them now)",
        drain_s,
    )
    shutdown: asyncio.Future[object] = asyncio.ensure_future(
        asyncio.gather(*(w.shutdown() for w in workers), *tasks, return_exceptions=True)
    )
    forced: asyncio.Future[object] = asyncio.ensure_future(force.wait())
    done, _ = await asyncio.wait(
        [shutdown, forced], timeout=drain_s + DRAIN_MARGIN_S, return_when=asyncio.FIRST_COMPLETED
    )
    forced.cancel()
    if shutdown not in done:
        log.warning("exiting with activities still running (they will be retried elsewhere)")
        return 1
    log.info("stopped")
    return 130 if sig == signal.SIGINT else 0  # Ctrl-C, as shells expect


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="t2m worker", description=__doc__)
    parser.add_argument(
        "--queues", default=",".join(WORKER_QUEUES), help="comma-separated: video,llm,render"
    )
    parser.add_argument(
        "--adopt-older-builds",
        action="store_true",
        help="move runs pinned to older builds onto this one where they replay (single host)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)  # one line per S3 client otherwise
    try:
        settings = get_settings()
    except InvalidSettings as e:
        print(f"t2m worker: refusing to start: invalid settings: {e}", file=sys.stderr)
        return 2
    if problem := queues_problem(args.queues):
        print(f"t2m worker: {problem}", file=sys.stderr)
        return 2
    workdirs = scratch.claim()  # and remove what killed workers on this host left
    # Not asyncio.run: its clean-up would wait for the tasks a timed-out drain leaves behind.
    loop = asyncio.new_event_loop()
    code = run(settings, parse_queues(args.queues), args.adopt_older_builds)
    exit_code = loop.run_until_complete(code)
    if exit_code in (0, 130):  # drained: a forced exit leaves it locked for the next sweep
        scratch.release(workdirs)
    return exit_code


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # sdk-python#300: the SDK can abort at interpreter exit
