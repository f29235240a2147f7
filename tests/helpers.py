"""Helpers the tests share: free loopback ports, the app over ASGI, the `t2m` command, rows."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from api.main import create_app
from t2m.config import Settings
from t2m.models import VideoRequest

T2M = str(Path(sys.executable).parent / "t2m")


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range (32768+), so it cannot collide with
    the random ports servers started by the tests (e.g. Temporal's metrics) take for themselves."""
    while True:
        port = random.randint(20_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


@contextlib.asynccontextmanager
async def asgi_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (lifespan included) over ASGI, against the session's Temporal and PostgreSQL."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as http,
    ):
        http.app = app  # type: ignore[attr-defined]
        yield http


def catalog_request(owner: str, topic: str = "Catalog entry") -> VideoRequest:
    """A request as the catalog stores it, for rows a test writes directly."""
    return VideoRequest(topic=topic, model="offline/templates", owner=owner)


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    return (
        os.environ
        | {
            "T2M_DATA_DIR": str(settings.data_dir),
            "T2M_TEMPORAL_ADDRESS": settings.temporal_address,
            "T2M_TEMPORAL_NAMESPACE": settings.temporal_namespace,
            "T2M_TASK_QUEUE_PREFIX": settings.task_queue_prefix,
        }
        | extra
    )


async def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        T2M, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
    return proc.returncode, out.decode(), err.decode()
