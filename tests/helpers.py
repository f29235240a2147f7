"""Helpers the tests share: free loopback ports, the app over ASGI, under uvicorn in this process
or in its own, the `t2m` command, rows, /proc and /metrics readings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from api.main import create_app
from t2m.config import Settings
from t2m.vocabulary.request import VideoRequest

T2M = str(Path(sys.executable).parent / "t2m")
AS_TYPED = ("env", "--default-signal=INT")
"""Prefix of a command a test sends Ctrl-C to: started as a terminal starts it, with SIGINT's
default action. A suite started in the background (`make test &`) runs with SIGINT ignored, and
an ignored signal stays ignored in every process it starts: the command would never hear it."""


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
    """The `t2m` command's environment for this test's stack. `t2m generate` goes through the API
    where one answers at the derived address: point it at a free port (no API) unless a test names
    one, so that no other stack's API on the default port takes the job."""
    return (
        os.environ
        | {
            "T2M_API_PORT": str(free_port()),
            "T2M_DATA_DIR": str(settings.data_dir),
            "T2M_TEMPORAL_ADDRESS": settings.temporal_address,
            "T2M_TEMPORAL_NAMESPACE": settings.temporal_namespace,
            "T2M_TASK_QUEUE_PREFIX": settings.task_queue_prefix,
            "T2M_REUSE_RESULTS": str(settings.reuse_results).lower(),
        }
        | extra
    )


async def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        T2M, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
    assert proc.returncode is not None  # communicate() waited for it
    return proc.returncode, out.decode(), err.decode()


async def generate_then_ctrl_c(env: dict[str, str], model: str) -> tuple[int, dict[str, Any], str]:
    """`t2m generate` of a low-quality job by `model` (`--json`) as a subprocess, sent SIGINT once
    its progress shows the job exists: its exit code, its one JSON object, and the job id its
    progress named."""
    proc = await asyncio.create_subprocess_exec(
        *AS_TYPED, T2M, "generate", "Square numbers", "--model", model, "--quality", "low", "--json",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    first = (await asyncio.wait_for(proc.stderr.readline(), timeout=60)).decode()
    assert first.startswith("video-"), first  # its progress: the job exists
    proc.send_signal(signal.SIGINT)
    try:
        printed, said = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()
        printed, said = await proc.communicate()
        raise AssertionError(
            f"still running 60 s after Ctrl-C; stdout {printed[-2000:]!r}\n"
            f"stderr: {said.decode(errors='replace')[-4000:]}"
        ) from None
    assert proc.returncode is not None  # communicate() waited for it
    return proc.returncode, json.loads(printed), first.split(":")[0]


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """`app` served by uvicorn in this process on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def api_process(settings: Settings, **env: str) -> AsyncIterator[tuple[str, int]]:
    """The API under uvicorn in its own process (as `t2m up` runs it), configured through the
    environment from `settings`; yields its base URL and pid."""
    port = free_port()
    environ = cli_env(settings, T2M_DATABASE_URL=settings.database_url or "", **env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        env=environ,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(300):
                assert proc.returncode is None, "the API process exited"
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/metrics")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield url, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):  # a test may have stopped it already
            proc.terminate()
        await proc.wait()


def proc_status_kib(pid: int, field: str) -> int:
    """A `/proc/<pid>/status` size field (VmRSS, VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss(pid: int) -> None:
    """Start VmHWM (peak RSS) afresh from the current RSS (Linux: clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def metric_series(exposition: str, family: str) -> dict[str, float]:
    """The samples of one metric family in a Prometheus text exposition, by their label set."""
    samples = {}
    for line in exposition.splitlines():
        if line.startswith(family + "{"):
            labels, _, value = line[len(family) :].rpartition(" ")
            samples[labels] = float(value)
    return samples


def readme_walkthrough() -> str:
    """The README's REST walkthrough, verbatim."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("<!-- api-walkthrough -->")[1].split("<!-- /api-walkthrough -->")[0]
    return block.split("```sh\n")[1].split("```")[0]


def start_up(env: dict[str, str], *args: str) -> subprocess.Popen:
    """`t2m up ARGS` in its own process, returned once it says it is up (or its logs on failure)."""
    proc = subprocess.Popen(
        [T2M, "up", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen = []
    for line in proc.stdout:  # type: ignore[union-attr]
        seen.append(line)
        if line.startswith("Try:"):
            return proc
    logs = Path(env["T2M_DATA_DIR"]) / "logs"
    tails = {p.name: p.read_text()[-1500:] for p in logs.glob("*.log")} if logs.exists() else {}
    raise AssertionError(f"t2m up exited early with {proc.wait()}: {''.join(seen)} {tails}")


def stop_up(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def started(pid: int) -> str | None:
    """A live process's start time (None once it is gone or a zombie): tells a recycled pid apart."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


async def gone(pids: dict[int, str | None], timeout_s: float) -> list[int]:
    """Waits up to `timeout_s` for the processes (pid: start time) to end; those still there."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [pid for pid, start in pids.items() if start is not None and started(pid) == start]
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.05)


def descendants(roots: list[int]) -> dict[int, str | None]:
    """Every process under `roots` (roots included), with its start time."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found = set(roots)
    while grown := {pid for pid, ppid in parents.items() if ppid in found} - found:
        found |= grown
    return {pid: started(pid) for pid in found}


def runners_under(root: int) -> dict[int, str | None]:
    """The render runners (jailed scene renders) among `root`'s descendants, with start times:
    scoped to one worker, so renders of tests running beside it do not count."""
    tree = descendants([root])
    return {pid: start for pid, start in tree.items() if b"t2m.render.runner" in _cmdline(pid)}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
