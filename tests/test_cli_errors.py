"""Errors that help: `--json` stdout is the JSON alone, even with a chatty model library in the
process; a missing or rejected provider key fails the job at once, not retryable, in one line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from t2m.catalog.storage import LocalStorage, get_storage
from t2m.config import RENDER_TIMEOUT_MAX_S, Settings
from tests.helpers import T2M, cli_env, free_port, run_cli
from workflows import activity_table

MODEL = "openai/gpt-4o-mini"


@contextlib.asynccontextmanager
async def rejecting_provider() -> AsyncIterator[str]:
    """An OpenAI-compatible endpoint on loopback that rejects every key (HTTP 401)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            body = json.dumps(
                {
                    "error": {
                        "message": "Incorrect API key provided: sk-bad",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                }  # fmt: skip
            ).encode()
            writer.write(
                b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        writer.close()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server:
        yield f"http://127.0.0.1:{port}/v1"


def _one_line_without_class_names(error: str) -> None:
    assert "\n" not in error and "litellm." not in error and "Exception -" not in error
    assert not error.startswith(("InternalServerError", "AuthenticationError", "ModelError"))


async def test_a_missing_key_fails_at_once_and_is_not_retryable(
    settings: Settings, worker: None, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the worker's environment
    env = cli_env(settings, T2M_ALLOWED_MODELS=json.dumps([MODEL]))
    env.pop("OPENAI_API_KEY", None)
    code, out, err = await run_cli(env, "generate", "Prime numbers", "--model", MODEL, "--json")
    assert code == 1, err
    answer = json.loads(out)
    assert answer["status"] == "failed" and answer["retryable"] is False
    assert answer["error"] == f"model '{MODEL}' cannot be used: OPENAI_API_KEY is not set"
    _one_line_without_class_names(answer["error"])
    run = await client.get_workflow_handle(answer["job_id"]).describe()
    assert run.close_time is not None
    took = (run.close_time - run.start_time).total_seconds()
    assert took < 10, took  # the job's own time, not the CLI's start-up on a busy machine


async def test_json_stdout_holds_only_the_json_with_a_chatty_real_provider_path(
    settings: Settings, tmp_path: Path
) -> None:
    """The throwaway stack runs in the CLI's process, with everything logging at INFO to stdout
    (as a deployment's logging setup may have it; litellm's INFO lines go to stdout), against a
    loopback provider that rejects the key: stdout is one JSON object, the error one line."""
    chatty = tmp_path / "chatty"
    chatty.mkdir()
    (chatty / "sitecustomize.py").write_text(
        "import logging, sys\nlogging.basicConfig(level=logging.INFO, stream=sys.stdout)\n"
    )
    async with rejecting_provider() as base:
        env = cli_env(
            settings,
            PYTHONPATH=str(chatty),
            T2M_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",  # nothing there: a throwaway stack
            T2M_ALLOWED_MODELS=json.dumps([MODEL]),
            OPENAI_API_KEY="sk-bad",
            OPENAI_API_BASE=base,
            OPENAI_BASE_URL=base,
            LITELLM_LOG="INFO",
        )
        args = ("generate", "Prime numbers", "--model", MODEL, "--quality", "low", "--json")
        code, out, err = await run_cli(env, *args)
    assert code == 1, err
    answer = json.loads(out)  # nothing else on stdout
    assert answer["status"] == "failed" and answer["retryable"] is False, answer
    assert answer["error"].startswith(f"model '{MODEL}' cannot be used: "), answer
    assert "Incorrect API key" in answer["error"]
    _one_line_without_class_names(answer["error"])


@pytest.mark.parametrize(
    "command",
    [("up",), ("worker",), ("generate", "Cells"), ("jobs", "list"), ("python", "worker"), ("api",)],
)
async def test_invalid_settings_are_refused_in_one_line_naming_each_and_its_rule(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Each wrong setting by its variable's name and rule, never its value (it may be a secret),
    exit 2 (the API under uvicorn: 1), nothing started: not a pydantic traceback."""
    canary = "sk-canary-0123456789"
    env = os.environ | {
        "T2M_DATA_DIR": str(tmp_path / "data"),
        "T2M_RENDER_TIMEOUT_S": "3600",  # longer than its activity may run
        "T2M_API_PORT": canary,
    }
    if command[0] == "python":
        argv = [sys.executable, str(Path(__file__).parent.parent / "worker.py")]
    elif command[0] == "api":  # as the image and the pods run it
        argv = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app"]
        argv += ["--port", str(free_port())]
    else:
        argv = [T2M, *command]
    done = await asyncio.to_thread(
        subprocess.run, argv, env=env, capture_output=True, text=True, timeout=120
    )
    line = done.stderr.strip()
    code = 1 if command[0] == "api" else 2
    assert done.returncode == code and "\n" not in line, (done.returncode, line)
    assert "invalid settings: " in line, line
    assert (
        f"T2M_RENDER_TIMEOUT_S: Input should be less than or equal to {RENDER_TIMEOUT_MAX_S:g}"
        in line
    )
    assert "T2M_API_PORT: Input should be a valid integer" in line
    assert canary not in line + done.stdout
    assert not (tmp_path / "data" / "logs").exists(), "nothing was started"


@pytest.mark.parametrize(
    ("variable", "env_file", "told"),
    [
        ("T2M_ALLOWED_MODELS", "", 'T2M_ALLOWED_MODELS: must be JSON, e.g. ["a", "b"]'),
        ("T2M_STORAGE_URL", "", "T2M_STORAGE_URL: use file:///path or s3://bucket[/prefix]"),
        ("", "T2M_API_PORT=\xff\n", ".env or a file of the secrets dir is not UTF-8 text"),
    ],
)
async def test_settings_read_before_validation_are_named_too_and_json_says_so(
    tmp_path: Path, variable: str, env_file: str, told: str
) -> None:
    """A list setting that is not JSON, a validator's rule (without pydantic's "Value error, "),
    a `.env` that is not UTF-8: one line, exit 2; with `--json`, one JSON object as well."""
    env = os.environ | {"T2M_DATA_DIR": str(tmp_path / "data")}
    if variable:
        env[variable] = "[" if variable == "T2M_ALLOWED_MODELS" else "ftp://x"
    (tmp_path / ".env").write_bytes(env_file.encode("latin-1"))  # read from the working dir
    done = await asyncio.to_thread(
        subprocess.run,
        [T2M, "generate", "Cells", "--json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    line = done.stderr.strip()
    assert (
        done.returncode == 2
        and line == f"t2m generate: refusing to start: invalid settings: {told}"
    )
    assert json.loads(done.stdout) == {"error": f"invalid settings: {told}"}


def test_a_render_times_out_in_its_jail_before_its_activity_does() -> None:
    """The jail's timeout tells the fixer "too slow"; the activity's would retry the render."""
    margin = timedelta(minutes=1)  # checking, storing, reporting
    for spec in (activity_table.RENDER_SCENE, activity_table.PLAN_RENDER):
        assert spec.start_to_close >= timedelta(seconds=RENDER_TIMEOUT_MAX_S) + margin, spec.name


@pytest.mark.parametrize("taken", ["T2M_API_PORT", "T2M_TEMPORAL_ADDRESS"])
async def test_up_refuses_at_once_naming_a_port_in_use(tmp_path: Path, taken: str) -> None:
    """A second `t2m up` on used ports: exit 2 within 5 s, saying which port, starting nothing."""
    with socket.socket() as other:  # another stack's listener
        other.bind(("127.0.0.1", 0))
        other.listen()
        busy = other.getsockname()[1]
        env = os.environ | {
            "T2M_DATA_DIR": str(tmp_path / "data"),
            "T2M_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "T2M_TEMPORAL_UI_PORT": str(free_port()),
            "T2M_API_PORT": str(free_port()),
        }
        env.pop("T2M_DATABASE_URL", None)
        env[taken] = f"127.0.0.1:{busy}" if taken == "T2M_TEMPORAL_ADDRESS" else str(busy)
        t = time.monotonic()
        code, out, err = await run_cli(env, "up")
        took = time.monotonic() - t
    assert code == 2 and took < 5, (code, took, err)
    assert f"port {busy} on 127.0.0.1" in err and taken in err and "in use" in err
    assert "t2m is up" not in out and not (tmp_path / "data" / "logs").exists()


async def test_a_worker_whose_storage_is_not_the_stacks_refuses(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """The stack's first worker claimed its queues for its data dir; a worker of another data dir
    pointed at them (as a second `t2m up`'s worker did) refuses with one line, taking nothing."""
    import worker

    mine = get_storage(settings)
    assert isinstance(mine, LocalStorage)
    assert await worker.stack_mismatch(client, settings, mine) is None  # claims
    assert await worker.stack_mismatch(client, settings, mine) is None  # and is still its own
    env = cli_env(settings) | {"T2M_DATA_DIR": str(tmp_path / "other")}
    env.pop("T2M_DATABASE_URL", None)
    code, out, err = await run_cli(env, "worker", "--queues", "llm")
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("t2m worker:")]
    assert len(lines) == 1 and "refusing to serve" in lines[0], err
    assert str(tmp_path / "other") in lines[0] and "out of reach" in lines[0]
