"""`t2m generate` and `t2m jobs` find the running API as `t2m up` serves it (T2M_API_HOST/PORT) and go
through it: the job is the key's user's, the server's model allow-list and result reuse apply;
`--follow` shows a progress bar; download and reuse explain themselves. The real API under uvicorn
on loopback, a real worker behind it, the command as a subprocess."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import litellm
import pytest

from api.main import create_app
from cli.remote import Config, Remote
from cli.via_api import interrupted
from t2m.config import Settings
from tests.helpers import T2M, cli_env, free_port, generate_then_ctrl_c, run_cli, serve
from tests.scripted import ScriptedLLM, plan_json, scene_code

MODEL = "scripted/test"  # the API's settings allow it; the CLI's environment does not


@pytest.fixture
async def api_url(api_settings: Settings) -> AsyncIterator[str]:
    """The API (API keys required, no dev identity) on a loopback port."""
    async with serve(create_app(api_settings)) as url:
        yield url


def derived_env(settings: Settings, tmp_path: Path, url: str, key: str) -> dict[str, str]:
    """The CLI's environment with no T2M_API and no config file: only where `t2m up` would serve
    the API (T2M_API_HOST/T2M_API_PORT), the key, and a Temporal address nothing answers at (a
    command that went around the API would make a throwaway stack, not this API's job)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    env = cli_env(
        settings,
        T2M_API_HOST=host,
        T2M_API_PORT=port,
        T2M_API_KEY=key,
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        T2M_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
    )
    for name in ("T2M_API", "T2M_CONFIG", "T2M_ALLOWED_MODELS", "T2M_DEFAULT_MODEL"):
        env.pop(name, None)
    return env


@pytest.mark.parametrize("settings", [{"reuse_results": True}], indirect=True)
async def test_generate_goes_through_the_running_api(
    settings: Settings,
    worker: None,
    api_url: str,
    keys,
    scripted: ScriptedLLM,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alice, admin = keys["alice"], keys["admin"]
    env = derived_env(settings, tmp_path, api_url, alice["Authorization"].removeprefix("Bearer "))
    assert MODEL not in Settings(_env_file=None).allowed_models  # type: ignore[call-arg]
    out = tmp_path / "out"
    args = ["generate", "Prime numbers", "--model", MODEL, "--quality", "low", "--voice", "none"]
    code, stdout, err = await run_cli(env, *args, "--out", str(out), "--json")
    assert code == 0, err
    first = json.loads(stdout)
    job = first["job_id"]
    assert first["status"] == "completed" and first["reused_from"] is None
    assert "ephemeral" not in err and "warning: no --context" not in err  # a real model
    assert Path(first["video"]) == (out / f"{job}.mp4").resolve()
    assert first["scenes"] >= 1 and first["duration_s"] > 0
    assert "test" in scripted.models  # the server's worker asked the model the CLI named
    async with httpx.AsyncClient(base_url=api_url, headers=admin, timeout=30) as http:
        r = await http.get("/api/v1/jobs", params={"owner": "*"})
        [row] = [j for j in r.json()["items"] if j["job_id"] == job]
        assert row["owner"] == alice.user  # the key's user, not the CLI's dev identity
        served = await http.get(f"/api/v1/videos/jobs/{job}/download")
        assert Path(first["video"]).read_bytes() == served.content

    # The identical request again: the server answers from its finished job, and says so.
    code, stdout, err = await run_cli(env, *args, "--out", str(out))
    assert code == 0, err
    [done] = [line for line in stdout.splitlines() if line.startswith("Done: ")]
    again = done.split()[1]
    assert again != job and done.endswith(f"reused from job {job}; --force to make anew"), done
    code, stdout, _ = await run_cli(env, "jobs", "status", again)
    assert code == 0 and f"reused from job {job}" in stdout
    code, stdout, err = await run_cli(env, *args, "--force", "--out", str(out), "--json")
    assert code == 0, err
    forced = json.loads(stdout)
    assert forced["reused_from"] is None and forced["job_id"] not in (job, again)

    # A job that fails: `jobs download` says it failed and why, not "not ready (HTTP 409)".
    def reject(task: str, data: dict) -> str | None:
        raise litellm.AuthenticationError("Incorrect API key provided", "scripted", "test")

    scripted.handler = reject
    args[1] = "Composite numbers"
    code, stdout, err = await run_cli(env, *args, "--json")
    failed = json.loads(stdout)
    assert code == 1 and failed["status"] == "failed" and failed["retryable"] is False, err
    code, stdout, err = await run_cli(env, "jobs", "download", failed["job_id"], "--json")
    assert code == 2 and json.loads(stdout)["http_status"] == 409
    [line] = [x for x in err.splitlines() if x.startswith("t2m:")]
    assert line.startswith(f"t2m: job {failed['job_id']} failed: model '{MODEL}' cannot be used")
    assert line.endswith("it has no video (change the request and generate anew)"), line

    # Ctrl-C while the server makes it: the job is cancelled there, exit 130, one JSON object.
    # (Its scenes render "forever", so that the cancel lands before the job could complete.)
    scripted.handler = lambda task, data: (
        scene_code(data["class_name"], "self.wait(900)") if task == "write_scene_code" else None
    )
    code, answer, job_id = await generate_then_ctrl_c(env, MODEL)
    # "cancelling" is the CLI's answer for a job not ended within its 15 s (1.3 s here): the job
    # must end cancelled all the same, below (it once went on: a cancel landing while the job
    # asked the result cache was swallowed; test_workflow_logic has that case).
    assert code == 130 and answer["status"] in ("cancelled", "cancelling"), answer
    assert answer["job_id"] == job_id
    async with httpx.AsyncClient(base_url=api_url, headers=alice, timeout=30) as http:
        for _ in range(120):
            r = await http.get(f"/api/v1/videos/jobs/{answer['job_id']}/status")
            if r.json()["status"] in ("completed", "failed", "cancelled"):
                break
            await asyncio.sleep(0.5)
        assert r.json()["status"] == "cancelled", r.json()

    # Ctrl-C that comes too late (the job completed before the cancel): the job's own ending.
    key = alice["Authorization"].removeprefix("Bearer ")
    with Remote(Config(api_url, key), "test") as remote:
        code = await asyncio.to_thread(interrupted, remote, argparse.Namespace(json=True), job)
    told = json.loads(capsys.readouterr().out)
    assert code == 130 and told["status"] == "completed" and "jobs download" in told["error"]


async def test_jobs_find_the_api_by_its_port_and_name_the_setting_when_none_answers(
    settings: Settings, api_url: str, keys, tmp_path: Path
) -> None:
    key = keys["bob"]["Authorization"].removeprefix("Bearer ")
    env = derived_env(settings, tmp_path, api_url, key)
    code, stdout, err = await run_cli(env, "jobs", "list", "--json")
    assert code == 0 and json.loads(stdout)["total"] == 0, err
    # The server's rules: its default model (offline: warned about before anything is made), its
    # validation (422: exit 2 with the field) and its priority ceiling (403).
    code, stdout, err = await run_cli(env, "generate", "Tides", "--voice", "xx-nope")
    assert code == 2 and stdout == "", err
    assert "warning: no --context, and the offline model (offline/templates)" in err
    last = err.splitlines()[-1]
    assert last.startswith("t2m: failed: invalid request: configuration.voice: unknown voice")
    assert last.endswith("(HTTP 422)")
    code, stdout, err = await run_cli(env, "generate", "Tides", "--context", "The moon pulls.",
                                      "--priority", "urgent", "--json")  # fmt: skip
    assert code == 1 and json.loads(stdout)["job_id"] is None, err
    assert "priority 'urgent' is reserved to admins" in err
    dead = free_port()
    code, stdout, err = await run_cli(env | {"T2M_API_PORT": str(dead)}, "jobs", "list")
    assert code == 1 and stdout == ""
    [line] = err.splitlines()
    assert line.startswith(f"t2m: cannot reach the API at http://127.0.0.1:{dead} (")
    assert "T2M_API_HOST/T2M_API_PORT" in line and "set T2M_API" in line
    # A URL someone named must answer: `generate` fails at once, starting no stack of its own.
    named = env | {"T2M_API": f"http://127.0.0.1:{dead}"}
    code, stdout, err = await run_cli(named, "generate", "Prime numbers", "--json")
    assert code == 1 and json.loads(stdout)["status"] == "failed"
    assert f"cannot reach the API at http://127.0.0.1:{dead}" in err and "T2M_API names it" in err
    assert "ephemeral" not in err


async def follow_on_a_terminal(env: dict[str, str], job: str) -> tuple[int, str, str]:
    """`t2m jobs status JOB --follow` with its stderr on a pseudo-terminal (as in a shell)."""
    leader, follower = os.openpty()
    proc = await asyncio.create_subprocess_exec(
        T2M, "jobs", "status", job, "--follow", "--interval", "0.2",
        env=env | {"COLUMNS": "100", "TERM": "xterm"}, stdout=asyncio.subprocess.PIPE,
        stderr=follower,
    )  # fmt: skip
    os.close(follower)
    screen = bytearray()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def readable() -> None:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # EIO: the follower side is closed
            chunk = b""
        if chunk:
            screen.extend(chunk)
        else:
            loop.remove_reader(leader)
            done.set()

    loop.add_reader(leader, readable)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
        await asyncio.wait_for(done.wait(), timeout=10)
    finally:
        with contextlib.suppress(ValueError):
            loop.remove_reader(leader)
        os.close(leader)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), screen.decode(errors="replace")


async def test_follow_shows_every_change_and_the_end_once(
    settings: Settings, worker: None, api_url: str, keys, scripted: ScriptedLLM, tmp_path: Path
) -> None:
    scripted.handler = lambda task, data: (
        plan_json("One", "Two", "Three", "Four") if task == "plan_video" else None
    )
    alice = keys["alice"]
    env = derived_env(settings, tmp_path, api_url, alice["Authorization"].removeprefix("Bearer "))
    body = {"configuration": {"topic": "Counting", "model": MODEL, "quality": "low"}}
    async with httpx.AsyncClient(base_url=api_url, headers=alice, timeout=30) as http:
        r = await http.post("/api/v1/videos/generate", json=body)
        assert r.status_code == 201, r.text
    job = r.json()["job_id"]
    args = ("jobs", "status", job, "--follow", "--interval", "0.2")
    (code, out, screen), (piped_code, piped_out, piped_err) = await asyncio.gather(
        follow_on_a_terminal(env, job), run_cli(env, *args)
    )
    assert (code, piped_code) == (0, 0), (screen, piped_err)
    final = f"{job}: completed 100%\n"  # not "completed, completed 100%"
    for stdout in (out, piped_out):  # the end: once, on stdout, with the scenes
        assert stdout.startswith(final) and stdout.count(f"{job}: ") == 1, stdout
        assert stdout.count("  scene ") == 4
    # On a terminal: a progress bar with the stage and percentage, redrawn as they change,
    # cleared at the end.
    assert "━" in screen and f"{job}: " not in screen, screen
    shown = {int(p) for p in re.findall(r"(\d+)%", screen)}
    assert len(shown) >= 3, screen
    # Elsewhere: a line per change, percentages within a stage too, never the end.
    lines = piped_err.splitlines()
    assert lines and all(line.startswith(f"{job}: ") for line in lines), piped_err
    assert all(a != b for a, b in zip(lines, lines[1:], strict=False))
    assert not any(": completed" in line for line in lines)
    seen = [re.match(rf"{job}: \w+, (\w+) (\d+)%", line) for line in lines]
    stages = [(m[1], int(m[2])) for m in seen if m]
    percentages = [p for _, p in stages]
    assert percentages == sorted(percentages), lines
    assert len(set(stages)) > len({s for s, _ in stages}), lines  # a stage at several percentages


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", "8123", "http://127.0.0.1:8123"),
        ("0.0.0.0", "9000", "http://127.0.0.1:9000"),  # bound everywhere: reached on loopback
        ("::", "9000", "http://[::1]:9000"),
        ("[::1]", "9000", "http://[::1]:9000"),  # bracketed as in a URL: not bracketed again
        ("127.0.0.1", "tcp://10.0.0.7:80", "http://127.0.0.1:8000"),  # a kubelet service link
    ],
)
def test_the_url_is_where_t2m_up_serves(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str, port: str, url: str
) -> None:
    from cli.remote import DERIVED, load_config
    from t2m.config import get_settings

    monkeypatch.setenv("T2M_API_HOST", host)
    monkeypatch.setenv("T2M_API_PORT", port)
    get_settings.cache_clear()
    try:
        config = load_config({"XDG_CONFIG_HOME": str(tmp_path)})  # no config file there
    finally:
        get_settings.cache_clear()
    assert (config.api, config.source, config.named) == (url, DERIVED, False)
