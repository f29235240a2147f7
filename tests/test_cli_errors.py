"""Errors that help: `--json` stdout is the JSON alone, even with a chatty model library in the
process; a missing or rejected provider key fails the job at once, not retryable, in one line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from cli.remote import URL_RULE
from t2m.catalog.storage import LocalStorage, get_storage
from t2m.config import RENDER_TIMEOUT_MAX_S, Settings
from tests.helpers import T2M, cli_env, free_port, run_cli
from workflows import activity_table, storage_claim

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

    mine = get_storage(settings)
    assert isinstance(mine, LocalStorage)
    assert await storage_claim.stack_mismatch(client, settings, mine) is None  # claims
    assert (
        await storage_claim.stack_mismatch(client, settings, mine) is None
    )  # and is still its own
    env = cli_env(settings) | {"T2M_DATA_DIR": str(tmp_path / "other")}
    env.pop("T2M_DATABASE_URL", None)
    code, out, err = await run_cli(env, "worker", "--queues", "llm")
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("t2m worker:")]
    assert len(lines) == 1 and "refusing to serve" in lines[0], err
    assert str(tmp_path / "other") in lines[0] and "out of reach" in lines[0]


# --- bad input to the command: one line naming the field and its rule, exit 2, no traceback ---


def bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The command's environment with no stack behind it: its own data and config dirs, nothing at
    the API's derived address or at Temporal's, no API, key or database named."""
    env = os.environ | {
        "T2M_DATA_DIR": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "T2M_API_PORT": str(free_port()),
        "T2M_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    for name in ("T2M_API", "T2M_API_KEY", "T2M_CONFIG", "T2M_DATABASE_URL"):
        env.pop(name, None)
    return env | extra


def one_error_line(err: str, start: str = "t2m") -> str:
    """The command's one error line (argparse's usage line aside); no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if not line.startswith("usage:")]
    lines = [line for line in lines if line.strip() and not line.startswith(" ")]
    assert len(lines) == 1 and lines[0].startswith(start), err
    return lines[0]


def config_file(tmp_path: Path, name: str, value: str) -> Path:
    """The CLI's config file (where bare_env's XDG_CONFIG_HOME points) setting `name`."""
    config = tmp_path / "config" / "t2m" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f"{name} = {json.dumps(value)}\n")
    return config


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("T2M_API", "http://[::1"),
        ("T2M_API", "not a url"),
        ("T2M_API", "ftp://x"),
        ("T2M_API", "localhost:8000"),
        ("T2M_API", "http://h:99999"),
        ("config", "http://[::1"),
    ],
)
async def test_a_malformed_api_url_is_refused_naming_its_setting(
    tmp_path: Path, variable: str, value: str
) -> None:
    env = bare_env(tmp_path)
    source = "T2M_API"
    if variable == "config":
        source = f"`api` in {config_file(tmp_path, 'api', value)}"
    else:
        env[variable] = value
    code, out, err = await run_cli(env, "jobs", "list", "--json")
    line = one_error_line(err)
    assert code == 2, err
    assert line == f"t2m: {source}: {URL_RULE}"
    assert json.loads(out) == {"error": line.removeprefix("t2m: "), "http_status": None}


async def test_a_bracketed_ipv6_api_host_is_not_bracketed_again(tmp_path: Path) -> None:
    env = bare_env(tmp_path, T2M_API_HOST="[::1]")
    code, _, err = await run_cli(env, "jobs", "list")
    line = one_error_line(err)
    assert code == 1 and f"cannot reach the API at http://[::1]:{env['T2M_API_PORT']} (" in line


@pytest.mark.parametrize(
    ("where", "key"), [("env", "ключ"), ("env", "sekret\nb"), ("config", "sek ret")]
)
async def test_an_api_key_headers_cannot_carry_is_refused_unshown(
    tmp_path: Path, where: str, key: str
) -> None:
    env = bare_env(tmp_path, T2M_API=f"http://127.0.0.1:{free_port()}")
    source = "T2M_API_KEY"
    if where == "config":
        source = f"`api_key` in {config_file(tmp_path, 'api_key', key)}"
    else:
        env["T2M_API_KEY"] = key
    code, out, err = await run_cli(env, "jobs", "list", "--json")
    line = one_error_line(err)
    assert code == 2, err
    assert line == f"t2m: {source}: an API key is printable ASCII without whitespace"
    assert "sek" not in out + err and "ключ" not in out + err


async def test_a_config_file_t2m_config_names_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    for path, problem in ((missing, "no such file"), (tmp_path, "a directory, not a file")):
        env = bare_env(tmp_path, T2M_CONFIG=str(path))
        code, _, err = await run_cli(env, "jobs", "list")
        assert code == 2 and one_error_line(err) == f"t2m: T2M_CONFIG {path}: {problem}", err


@contextlib.asynccontextmanager
async def answering(
    status: str, content_type: str, body: bytes, *headers: str
) -> AsyncIterator[str]:
    """A web server on loopback that answers every request alike; yields its URL."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            head = [f"HTTP/1.1 {status}", f"content-type: {content_type}", *headers]
            head += [f"content-length: {len(body)}", "connection: close", "", ""]
            writer.write("\r\n".join(head).encode() + body)
            await writer.drain()
        writer.close()

    port = free_port()
    async with await asyncio.start_server(answer, "127.0.0.1", port):
        yield f"http://127.0.0.1:{port}"


def not_an_api(status: str) -> contextlib.AbstractAsyncContextManager[str]:
    """A web site: an HTML page with `status` for every request."""
    page = b"<html><body>" + b"<p>Welcome to a web site</p>\n" * 50 + b"</body></html>"
    return answering(status, "text/html; charset=utf-8", page)


@pytest.mark.parametrize("status", ["200 OK", "302 Found", "500 Internal Server Error"])
async def test_a_url_that_is_no_t2m_api_is_said_so_in_one_line(tmp_path: Path, status: str) -> None:
    async with not_an_api(status) as url:
        env = bare_env(tmp_path, T2M_API=url)
        for args in (("list",), ("status", f"video-{uuid.uuid4()}")):
            code, out, err = await run_cli(env, "jobs", *args, "--json")
            line = one_error_line(err)
            assert code == 1, err
            assert line == (
                f"t2m: {url} does not answer as a t2m API (HTTP {status.split()[0]},"
                " text/html; charset=utf-8); T2M_API names it"
            )
            assert json.loads(out)["http_status"] == int(status.split()[0])


async def test_a_download_refused_where_the_api_sent_it_is_one_line_without_its_query(
    tmp_path: Path,
) -> None:
    """The API's 307 to S3, and S3 refusing (an expired signature): the origin that refused, not
    "does not answer as a t2m API", and not the signed URL."""
    refusal = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>"
    async with answering("403 Forbidden", "application/xml", refusal) as s3:
        signed = f"location: {s3}/bucket/video.mp4?X-Amz-Signature=sekret"
        async with answering("307 Temporary Redirect", "application/json", b"", signed) as api:
            env = bare_env(tmp_path, T2M_API=api)
            args = ("jobs", "download", f"video-{uuid.uuid4()}", "--out", str(tmp_path))
            code, _, err = await run_cli(env, *args)
    assert code == 1, err
    assert one_error_line(err) == (
        f"t2m: {s3}, where the API sent the download, answered HTTP 403 (application/xml)"
    )
    assert "sekret" not in err


@pytest.mark.parametrize("job_id", ["", "x" * 100_000, "video-1", "../../metrics"])
async def test_a_job_id_is_checked_before_it_is_sent(tmp_path: Path, job_id: str) -> None:
    env = bare_env(tmp_path, T2M_API=f"http://127.0.0.1:{free_port()}")
    code, _, err = await run_cli(env, "jobs", "status", job_id)
    line = one_error_line(err, "t2m jobs status: error: argument JOB_ID: ")
    assert code == 2 and "is not a job id: video-<uuid>" in line and len(line) < 200


@pytest.mark.parametrize("interval", ["nan", "inf", "1e309", "-5", "0", "1e300", "soon"])
async def test_the_follow_interval_is_a_sane_number_of_seconds(
    tmp_path: Path, interval: str
) -> None:
    env = bare_env(tmp_path, T2M_API=f"http://127.0.0.1:{free_port()}")
    args = ("jobs", "status", f"video-{uuid.uuid4()}", "--follow", "--interval", interval)
    code, _, err = await run_cli(env, *args)
    line = one_error_line(err, "t2m jobs status: error: argument --interval: ")
    assert code == 2 and line.endswith(": give seconds from 0.1 to 3600"), err


@pytest.mark.parametrize(
    "command",
    [
        ("jobs", "download", "video-00000000-0000-0000-0000-000000000000"),
        ("generate", "Prime numbers"),
        ("eval", "topics.json"),
    ],
)
async def test_out_is_checked_before_any_work(tmp_path: Path, command: tuple[str, ...]) -> None:
    """A file where --out should be a directory, or above it, or a directory no file can be made
    in or under (/proc, even to root): refused at once, not after a render (nothing answers at
    the API or Temporal: the command would otherwise start a stack)."""
    file = tmp_path / "file"
    file.write_text("")
    env = bare_env(tmp_path)
    for out, problem in (
        (file, "is not a directory"),
        (file / "sub", f"is under {file}, which"),
        (Path("/proc/t2m-out"), "cannot be made: "),
        (Path("/proc"), "is not writable: "),
    ):
        code, _, err = await run_cli(env, *command, "--out", str(out))
        line = one_error_line(err, f"t2m {command[0]}")
        assert code == 2 and f"argument --out: '{out}' {problem}" in line, err


async def test_keys_create_with_a_malformed_database_url(tmp_path: Path) -> None:
    env = bare_env(tmp_path, T2M_DATABASE_URL="notaurl")
    code, out, err = await run_cli(env, "keys", "create", "--user", "bob", "--json")
    line = one_error_line(err)
    assert code == 2 and line.startswith("t2m keys create: T2M_DATABASE_URL: must be a PostgreSQL")
    assert json.loads(out) == {"error": line.removeprefix("t2m keys create: ")}


async def test_keys_create_with_an_unreachable_database_hides_its_password(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = bare_env(tmp_path, T2M_DATABASE_URL=f"postgresql://t2m:sekret-pw@127.0.0.1:{port}/x")
    code, out, err = await run_cli(env, "keys", "create", "--user", "bob", "--json")
    line = one_error_line(err)
    assert code == 1 and line.startswith(
        f"t2m keys create: cannot use the database at postgresql://t2m:***@127.0.0.1:{port}/x"
        " (T2M_DATABASE_URL): "
    )
    assert "sekret" not in out + err and json.loads(out)["error"] in line


async def test_keys_create_with_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    code, _, err = await run_cli(
        bare_env(tmp_path, T2M_DATA_DIR=str(file)), "keys", "create", "--user", "bob"
    )
    assert code == 2 and one_error_line(err).startswith(f"t2m keys create: T2M_DATA_DIR {file}: ")


@pytest.mark.parametrize("queues", ["bogus", ",", "llm,bogus"])
async def test_worker_queues_are_checked(tmp_path: Path, queues: str) -> None:
    code, _, err = await run_cli(bare_env(tmp_path), "worker", "--queues", queues)
    assert code == 2, err
    assert one_error_line(err) == f"t2m worker: --queues {queues!r}: choose from video,llm,render"


async def test_worker_without_temporal_says_so_in_one_line(tmp_path: Path) -> None:
    env = bare_env(tmp_path)
    code, _, err = await run_cli(env, "worker", "--queues", "llm")
    assert code == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("t2m worker:")]
    assert len(lines) == 1, err
    assert lines[0].startswith(
        f"t2m worker: cannot reach Temporal at {env['T2M_TEMPORAL_ADDRESS']}: "
    )
    for malformed in ("127.0.0.1:99999", "127.0.0.1", "http://127.0.0.1:7233", "[::1]:0"):
        env["T2M_TEMPORAL_ADDRESS"] = malformed  # exit 2 naming it
        code, _, err = await run_cli(env, "worker", "--queues", "llm")
        assert code == 2 and one_error_line(err) == (
            "t2m worker: refusing to start: invalid settings: T2M_TEMPORAL_ADDRESS: use"
            " HOST:PORT (a port from 1 to 65535), e.g. 127.0.0.1:7233"
        ), err


@pytest.mark.parametrize("schedule", ["", "  "])
async def test_eval_refuses_a_blank_schedule(tmp_path: Path, schedule: str) -> None:
    """Not taken for "no schedule": the eval would run now instead of on a schedule."""
    topics = tmp_path / "topics.json"
    topics.write_text(
        json.dumps([{"topic": "Prime numbers", "context": "Primes have two divisors."}])
    )
    args = ("eval", str(topics), "--schedule", schedule, "--json")
    code, out, err = await run_cli(bare_env(tmp_path), *args)
    line = one_error_line(err)
    assert code == 2, err
    assert line == "t2m eval: invalid eval: schedule: give a cron expression, e.g. '0 3 * * *'"
    assert json.loads(out) == {"error": line.removeprefix("t2m eval: ")}


# --- what the command meets after its checks: another server's JSON, 503s, a disk that refuses ---


JOB = "video-00000000-0000-4000-8000-000000000000"  # one id for every xdist worker's collection


@contextlib.asynccontextmanager
async def api_answering(*routes: tuple[str, bytes]) -> AsyncIterator[str]:
    """A web server on loopback that answers each request with the JSON of the first route whose
    text is in its request line (HTTP 200), else 404; yields its URL."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            request, *headers = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
            for header in headers:  # the body, if any, read before answering
                name, _, value = header.partition(":")
                if name.lower() == "content-length":
                    await reader.readexactly(int(value))
            body = next((body for text, body in routes if text in request), None)
            head = ["HTTP/1.1 200 OK" if body is not None else "HTTP/1.1 404 Not Found"]
            body = body if body is not None else b'{"detail": "not found"}'
            head += ["content-type: application/json", f"content-length: {len(body)}"]
            writer.write("\r\n".join([*head, "connection: close", "", ""]).encode() + body)
            await writer.drain()
        writer.close()

    port = free_port()
    async with await asyncio.start_server(answer, "127.0.0.1", port):
        yield f"http://127.0.0.1:{port}"


def _status(state: str) -> bytes:
    progress = {"percentage": 100, "current_stage": state, "stages_completed": [], "scenes": []}
    return json.dumps({"job_id": JOB, "status": state, "progress": progress}).encode()


def not_the_api_line(url: str, status: int = 200, kind: str = "application/json") -> str:
    return f"t2m: {url} does not answer as a t2m API (HTTP {status}, {kind}); T2M_API names it"


@pytest.mark.parametrize(
    ("args", "body"),
    [
        (("list",), b"{}"),
        (("list",), b"[]"),
        (("list",), b'{"items": [], "total": 0, "page": 1, "page_size": 0}'),
        (("list",), b'{"items": [{"job_id": 1}], "total": 1, "page": 1, "page_size": 20}'),
        (("status", JOB), b'{"status": "running"}'),
        (("status", JOB, "--follow", "--interval", "0.1"), b'{"status": "running"}'),
        (("status", JOB, "--follow", "--interval", "0.1"), _status("paused")),
        (("cancel", JOB), b"[1]"),
        (("regenerate", JOB, "0", "--feedback", "bigger"), b'{"job_id": "x"}'),
    ],
)
async def test_json_of_another_shape_is_no_t2m_api_said_in_one_line(
    tmp_path: Path, args: tuple[str, ...], body: bytes
) -> None:
    """Another server that answers JSON (or one of another version): not a KeyError, TypeError or
    ZeroDivisionError, but the line that says no t2m API answers there, exit 1."""
    async with answering("200 OK", "application/json", body) as url:
        code, out, err = await run_cli(bare_env(tmp_path, T2M_API=url), "jobs", *args, "--json")
    assert code == 1 and one_error_line(err) == not_the_api_line(url), err
    assert json.loads(out) == {"error": not_the_api_line(url)[5:], "http_status": 200}


async def test_a_422_of_another_shape_is_told_as_it_came(tmp_path: Path) -> None:
    body = b'{"detail": [{"type": "x"}, {"loc": 5, "msg": "too big"}]}'
    async with answering("400 Bad Request", "application/json", body) as url:
        code, _, err = await run_cli(bare_env(tmp_path, T2M_API=url), "jobs", "cancel", JOB)
    assert code == 2 and one_error_line(err) == "t2m: {'type': 'x'}; too big (HTTP 400)", err


@pytest.mark.parametrize(
    ("created", "urls", "job_id"),
    [
        (b"[]", b"{}", None),
        (b'{"ok": 1}', b"{}", None),
        (json.dumps({"job_id": JOB}).encode(), b'{"metadata": {}}', JOB),
    ],
)
async def test_generate_through_an_api_of_another_shape_says_so(
    tmp_path: Path, created: bytes, urls: bytes, job_id: str | None
) -> None:
    routes = (
        ("POST /api/v1/videos/generate", created),
        ("/status", _status("completed")),
        ("/video-url", urls),
        (f"/{JOB}/", b"media"),
    )
    async with api_answering(*routes) as url:
        args = ("generate", "Prime numbers", "--out", str(tmp_path / "out"), "--json")
        code, out, err = await run_cli(bare_env(tmp_path, T2M_API=url), *args)
    line = one_error_line(err)
    assert code == 1 and line == f"t2m: failed: {not_the_api_line(url)[5:]}", err
    error = line.removeprefix("t2m: failed: ")
    assert json.loads(out) == {
        "job_id": job_id,
        "status": "failed",
        "error": error,
        "retryable": None,
    }


async def test_follow_takes_a_proxys_503_page_for_no_t2m_api(tmp_path: Path) -> None:
    """Not waited out for ever: only the API's own 503 (JSON) says to ask again later."""
    async with not_an_api("503 Service Unavailable") as url:
        args = ("jobs", "status", JOB, "--follow")
        code, _, err = await run_cli(bare_env(tmp_path, T2M_API=url), *args)
    kind = "text/html; charset=utf-8"
    assert code == 1 and one_error_line(err) == not_the_api_line(url, 503, kind), err


async def test_follow_waits_out_the_apis_503_up_to_its_deadline(tmp_path: Path) -> None:
    """A Retry-After of `nan` is taken for none (not a crash in time.sleep), and the API's 503 is
    waited out up to the deadline only (shortened here to 1 s), then one line, exit 1."""
    short = tmp_path / "short"
    short.mkdir()
    (short / "sitecustomize.py").write_text(
        "import cli.remote\ncli.remote.UNAVAILABLE_WAIT_S = 1\n"
    )
    body = b'{"detail": "the workflow service is unavailable"}'
    async with answering(
        "503 Service Unavailable", "application/json", body, "retry-after: nan"
    ) as url:
        env = bare_env(tmp_path, T2M_API=url, PYTHONPATH=str(short))
        started = time.monotonic()
        code, _, err = await run_cli(env, "jobs", "status", JOB, "--follow", "--json")
    assert code == 1 and one_error_line(err) == (
        "t2m: the workflow service is unavailable (HTTP 503), still after 1 s"
    ), err
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("refusal", ["a directory", "a full disk"])
async def test_a_download_that_cannot_be_written_is_one_line(tmp_path: Path, refusal: str) -> None:
    """The directory passed its check, and then a file cannot be written after all: one line naming
    the file and the system's reason, exit 1, no partial file left."""
    out = tmp_path / "out"
    video = out / f"{JOB}.mp4"
    if refusal == "a directory":
        video.mkdir(parents=True)
        reason = "Is a directory"
    else:  # its partial file is /dev/full, where every write fails with ENOSPC
        out.mkdir()
        (out / f"{JOB}.mp4.part").symlink_to("/dev/full")
        reason = "No space left on device"
    async with answering("200 OK", "video/mp4", b"\0" * 100_000) as url:
        args = ("jobs", "download", JOB, "--out", str(out), "--json")
        code, out_text, err = await run_cli(bare_env(tmp_path, T2M_API=url), *args)
    line = one_error_line(err)
    assert code == 1 and line == f"t2m: cannot write {video}: {reason}", err
    assert json.loads(out_text) == {"error": line.removeprefix("t2m: "), "http_status": None}
    assert not list(out.glob("*.part"))


async def test_an_eval_terminated_while_followed_is_one_line(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """No worker takes the eval; an operator terminates it: the command says so, exit 1."""
    topics = tmp_path / "topics.json"
    topics.write_text(json.dumps([{"topic": "Prime numbers", "context": "Two divisors."}]))
    proc = await asyncio.create_subprocess_exec(
        T2M, "eval", str(topics), "--out", str(tmp_path), "--json",
        env=cli_env(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    first = (await asyncio.wait_for(proc.stderr.readline(), timeout=60)).decode()
    assert first.startswith("eval eval-") and first.endswith(": 1 topics\n"), first
    eval_id = first.split()[1].rstrip(":")
    await client.get_workflow_handle(eval_id).terminate(reason="stopped by an operator")
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    line = one_error_line(err.decode())
    assert proc.returncode == 1
    assert line == f"t2m eval: eval {eval_id} terminated: stopped by an operator"
    assert json.loads(out) == {"error": line.removeprefix("t2m eval: ")}


async def test_ctrl_c_after_the_eval_ended_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The cancel that Ctrl-C sends is refused (the eval closed meanwhile): said, exit 130."""
    from cli.evaluate import follow

    ended = asyncio.get_running_loop().create_future()

    class Closed:
        id = "eval-closed"

        def result(self) -> asyncio.Future[None]:
            return ended

        async def query(self, *_: object, **__: object) -> None:
            raise asyncio.CancelledError  # as asyncio.run delivers Ctrl-C

        async def cancel(self) -> None:
            raise RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")

    class Temporal:
        async def start_workflow(self, *_: object, **__: object) -> Closed:
            return Closed()

    queues = cast(Settings, SimpleNamespace(queue=lambda name: name))
    req = SimpleNamespace(name="closed", items=[None])
    try:
        code = await follow(Temporal(), queues, argparse.Namespace(json=True), req)
    finally:
        ended.cancel()
    said = capsys.readouterr()
    reason = "interrupted; eval eval-closed not cancelled: workflow execution already completed"
    assert code == 130 and said.err.splitlines()[-1] == f"t2m eval: {reason}"
    assert json.loads(said.out) == {"error": reason}
