"""`t2m jobs …`, `--version`, bare `t2m` and the help texts: the command as a subprocess against the
real API under uvicorn on loopback, a real worker behind it; exit codes 0, 1, 2 and 130."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import uuid
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from cli.main import _parser
from t2m.config import Settings
from tests.helpers import AS_TYPED, T2M, cli_env, free_port, run_cli, serve

GENERATE = "/api/v1/videos/generate"


@pytest.fixture
async def api_url(api_settings: Settings) -> AsyncIterator[str]:
    """The API (API keys required, no dev identity) on a loopback port."""
    async with serve(create_app(api_settings)) as url:
        yield url


def env_for(settings: Settings, tmp_path: Path, url: str, key: str | None) -> dict[str, str]:
    """The CLI's environment: the API and key, and a config dir of its own (no user's file)."""
    extra = {"T2M_API": url, "XDG_CONFIG_HOME": str(tmp_path / "config"), "T2M_API_KEY": key or ""}
    env = cli_env(settings, **extra)
    env.pop("T2M_CONFIG", None)
    return env


async def t2m_json(env: dict[str, str], *args: str) -> tuple[int, dict, str]:
    """Run `t2m ARGS --json`: stdout must be exactly one JSON object, stderr at most one `t2m:`
    line when it failed."""
    code, out, err = await run_cli(env, *args, "--json")
    answer = json.loads(out)
    assert isinstance(answer, dict), out
    if code != 0:
        errors = [line for line in err.splitlines() if line.startswith("t2m:")]
        assert len(errors) == 1, err
    return code, answer, err


async def test_every_jobs_verb_against_a_live_api(
    settings: Settings, api_settings: Settings, worker: None, api_url: str, keys, tmp_path: Path
) -> None:
    alice, bob = keys["alice"], keys["bob"]
    env = env_for(settings, tmp_path, api_url, alice["Authorization"].removeprefix("Bearer "))
    code, page, _ = await t2m_json(env, "jobs", "list")
    assert code == 0 and page["items"] == [] and page["total"] == 0

    body = {"configuration": {"topic": "Pythagorean Theorem", "quality": "low"}}
    async with httpx.AsyncClient(base_url=api_url, headers=alice, timeout=30) as http:
        r = await http.post(GENERATE, json=body)
        assert r.status_code == 201, r.text
        job = r.json()["job_id"]

        # Ctrl-C while following a running job: exit 130, still one JSON object on stdout.
        proc = await asyncio.create_subprocess_exec(
            *AS_TYPED, T2M, "jobs", "status", job, "--follow", "--interval", "0.2", "--json",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stderr is not None
        first = await asyncio.wait_for(proc.stderr.readline(), timeout=60)
        assert first.decode().startswith(f"{job}: "), first
        proc.send_signal(signal.SIGINT)
        raw_out, raw_err = await asyncio.wait_for(proc.communicate(), timeout=30)
        assert proc.returncode == 130, raw_err
        assert json.loads(raw_out) == {"error": "interrupted"}
        assert raw_err.decode().strip().endswith("t2m: interrupted")

        code, status, _ = await t2m_json(env, "jobs", "status", job)
        assert code == 0 and status["job_id"] == job
        assert status["status"] in ("queued", "running"), status  # still going: cancel it
        code, answer, _ = await t2m_json(env, "jobs", "cancel", job)
        assert (code, answer) == (0, {"job_id": job, "status": "cancelling"})
        # Following a job that ends cancelled is a failure: exit 1, with the final status.
        code, status, err = await t2m_json(env, "jobs", "status", job, "--follow")
        assert code == 1 and status["status"] == "cancelled"
        assert f"t2m: job {job} cancelled" in err
        # Nothing to download, and the reason is the job's, not "not ready (HTTP 409)".
        code, answer, err = await t2m_json(env, "jobs", "download", job)
        assert code == 2 and answer["http_status"] == 409
        assert answer["error"] == f"job {job} was cancelled: it has no video" + (
            f" (`t2m jobs retry {job}` runs it again)"
        )
        # Cancelling it again is a request its state refuses (409): exit 2, the API's message.
        code, answer, err = await t2m_json(env, "jobs", "cancel", job)
        assert code == 2 and answer["http_status"] == 409
        assert f"job {job} is already cancelled" in answer["error"]
        assert err.strip() == f"t2m: {answer['error']}"

        for _ in range(60):  # a just-cancelled job answers 409 "still stopping" for a moment
            code, answer, err = await t2m_json(env, "jobs", "retry", job)
            if code != 2 or "still stopping" not in err:
                break
            await asyncio.sleep(1)
        assert (code, answer) == (0, {"job_id": job, "status": "queued"}), err
        code, status, err = await t2m_json(env, "jobs", "status", job, "--follow")
        assert code == 0, err
        assert status["status"] == "completed" and status["progress"]["percentage"] == 100
        assert status["progress"]["scenes"]
        code, answer, _ = await t2m_json(env, "jobs", "retry", job)  # completed: 409
        assert code == 2 and answer["http_status"] == 409

        code, got, _ = await t2m_json(env, "jobs", "download", job, "--out", str(tmp_path / "dl"))
        assert code == 0
        files = {k: Path(v) for k, v in got.items() if k not in ("job_id", "status")}
        assert set(files) == {"video", "subtitles_srt", "subtitles_vtt", "thumbnail"}
        assert files["video"] == (tmp_path / "dl" / f"{job}.mp4").resolve()
        api_video = await http.get(f"/api/v1/videos/jobs/{job}/download")
        assert files["video"].read_bytes() == api_video.content  # the very bytes the API serves
        assert files["subtitles_vtt"].read_text().startswith("WEBVTT")
        assert " --> " in files["subtitles_srt"].read_text()
        assert files["thumbnail"].read_bytes().startswith(b"\x89PNG")

        code, page, _ = await t2m_json(env, "jobs", "list", "--status", "completed")
        assert code == 0 and [j["job_id"] for j in page["items"]] == [job]
        code, out, _ = await run_cli(env, "jobs", "list")  # the human table
        assert code == 0 and job in out and "completed" in out and "Pythagorean Theorem" in out

        # Another user's job is not found (404): a failure, exit 1.
        bob_env = env_for(settings, tmp_path, api_url, bob["Authorization"].removeprefix("Bearer "))
        code, answer, _ = await t2m_json(bob_env, "jobs", "status", job)
        assert code == 1 and answer["http_status"] == 404

        code, answer, _ = await t2m_json(env, "jobs", "delete", job)
        assert (code, answer) == (0, {"job_id": job, "status": "deleted"})
        code, answer, _ = await t2m_json(env, "jobs", "status", job)
        assert code == 1 and answer["http_status"] == 404
        code, page, _ = await t2m_json(env, "jobs", "list")
        assert code == 0 and page["total"] == 0


async def test_errors_and_their_exit_codes(
    settings: Settings, api_url: str, keys, tmp_path: Path
) -> None:
    key = keys["alice"]["Authorization"].removeprefix("Bearer ")
    # No credentials where the API requires them: 401, exit 1, the API's words.
    code, answer, err = await t2m_json(env_for(settings, tmp_path, api_url, None), "jobs", "list")
    assert code == 1 and answer["http_status"] == 401
    assert "authentication required" in err
    env = env_for(settings, tmp_path, api_url, key)
    # A request the API finds invalid (422): exit 2, the field and the API's message.
    code, answer, err = await t2m_json(env, "jobs", "list", "--page-size", "500")
    assert code == 2 and answer["http_status"] == 422
    assert "page_size: Input should be less than or equal to 100" in answer["error"]
    code, answer, _ = await t2m_json(env, "jobs", "status", f"video-{uuid.uuid4()}")
    assert code == 1 and answer["http_status"] == 404
    code, out, err = await run_cli(env, "jobs", "download", "../../metrics", "--json")
    assert code == 2 and out == "" and "is not a job id" in err  # refused, not sent
    # Nothing listens: exit 1 naming the URL.
    dead = f"http://127.0.0.1:{free_port()}"
    code, answer, err = await t2m_json(env_for(settings, tmp_path, dead, key), "jobs", "list")
    assert code == 1 and answer["http_status"] is None
    assert f"cannot reach the API at {dead} (" in err and "T2M_API names it" in err
    # Usage errors are argparse's: exit 2.
    code, _, err = await run_cli(env, "jobs", "status")
    assert code == 2 and "the following arguments are required: JOB_ID" in err
    code, _, err = await run_cli(env, "jobs", "list", "--status", "lost")
    assert code == 2 and "invalid choice: 'lost'" in err


async def test_the_config_file_gives_the_url_and_key(
    settings: Settings, api_url: str, keys, tmp_path: Path
) -> None:
    env = env_for(settings, tmp_path, api_url, None)
    del env["T2M_API"]
    config = tmp_path / "config" / "t2m" / "config.toml"
    config.parent.mkdir(parents=True)
    key = keys["bob"]["Authorization"].removeprefix("Bearer ")
    config.write_text(f'api = "{api_url}"\napi_key = "{key}"\n')
    code, page, _ = await t2m_json(env, "jobs", "list")
    assert code == 0 and page["total"] == 0
    # The environment wins over the file.
    code, answer, _ = await t2m_json(env | {"T2M_API_KEY": "not-a-key"}, "jobs", "list")
    assert code == 1 and answer["http_status"] == 401
    config.write_text("api = [")
    code, answer, err = await t2m_json(env, "jobs", "list")
    assert code == 2 and f"config file {config}" in err


async def test_version_bare_command_and_help(settings: Settings) -> None:
    env = cli_env(settings)
    code, out, _ = await run_cli(env, "--version")
    assert (code, out.strip()) == (0, f"t2m {version('t2m')}")
    # Bare `t2m` (and `t2m jobs`) print their help on stderr and exit 2, as incomplete usage.
    code, out, err = await run_cli(env)
    assert code == 2 and out == ""
    assert err.startswith("usage: t2m") and "jobs" in err and "130 interrupted" in err
    code, out, err = await run_cli(env, "jobs")
    assert code == 2 and out == "" and err.startswith("usage: t2m jobs")
    for verb in ("list", "status", "cancel", "retry", "delete", "download"):
        assert verb in err
    code, out, _ = await run_cli(env, "jobs", "download", "--help")
    assert code == 0 and "--out OUT" in out and "(default: .)" in " ".join(out.split())


def parsers(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [p]
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += parsers(child)
    return found


def test_every_option_has_help_and_shows_its_default() -> None:
    missing, no_default, no_json, commands = [], [], [], []
    for p in parsers(_parser()):
        commands.append(p.prog)
        formatter = p._get_formatter()
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction | argparse._HelpAction):
                continue
            if not a.help:
                missing.append(f"{p.prog} {a.dest}")
            elif a.option_strings and a.nargs != 0:
                shown = formatter._get_help_string(a) or ""  # type: ignore[attr-defined]
                if "(default" not in shown:
                    no_default.append(f"{p.prog} {a.option_strings[0]}")
        has_subcommands = any(isinstance(a, argparse._SubParsersAction) for a in p._actions)
        # `up` and `worker` are services: they log until stopped and have no result to print.
        has_json = any("--json" in a.option_strings for a in p._actions)
        if not (has_subcommands or has_json or p.prog in ("t2m up", "t2m worker")):
            no_json.append(p.prog)
    assert (missing, no_default, no_json) == ([], [], [])
    assert {"t2m jobs list", "t2m jobs download", "t2m generate", "t2m keys create"} <= set(
        commands
    )
