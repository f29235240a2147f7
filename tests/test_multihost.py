"""Many machines, played on one: `t2m up --queues video,llm` is one host, `t2m worker --queues
render` processes with their own data dirs are others; they share only Temporal, PostgreSQL (the
stack's) and S3 (the session's SeaweedFS, signatures checked)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright

from tests.helpers import T2M, free_port, readme_walkthrough, start_up, stop_up
from tests.seaweed import SeaweedFS, http_get

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass
class Hosts:
    up: subprocess.Popen
    env: dict[str, str]
    api: str
    root: Path
    bucket: str
    prefix: str
    render: subprocess.Popen | None = None
    render_log: Path | None = None
    data_dirs: list[Path] = field(default_factory=list)

    def start_render_worker(self, name: str) -> None:
        """A render worker on another "host": its own data dir, sharing only the services."""
        data = self.root / name
        self.data_dirs.append(data)
        self.render_log = self.root / f"{name}.log"
        self.render = subprocess.Popen(
            [T2M, "worker", "--queues", "render"],
            env=self.env | {"T2M_DATA_DIR": str(data)},
            stdout=self.render_log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def render_log_text(self) -> str:
        assert self.render_log is not None
        return self.render_log.read_text()

    def mp4s_on_hosts(self) -> list[Path]:
        return [p for d in self.data_dirs if d.exists() for p in d.rglob("*.mp4")]


@pytest.fixture(scope="module")
async def hosts(
    seaweed: SeaweedFS, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Hosts]:
    root = tmp_path_factory.mktemp("hosts")
    prefix = f"hosts-{uuid.uuid4().hex[:8]}"
    api_port = free_port()
    env = (
        os.environ
        | seaweed.env
        | {
            "T2M_STORAGE_URL": f"s3://{seaweed.bucket}/{prefix}",
            "T2M_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "T2M_TEMPORAL_UI_PORT": str(free_port()),
            "T2M_API_PORT": str(api_port),
            "T2M_RENDER_CONCURRENCY": "2",
        }
    )
    up = start_up(env | {"T2M_DATA_DIR": str(root / "a")}, "--queues", "video,llm")
    h = Hosts(up, env, f"http://127.0.0.1:{api_port}", root, seaweed.bucket, prefix)
    h.data_dirs.append(root / "a")
    h.start_render_worker("b")
    try:
        yield h
    finally:
        if h.render is not None:
            h.render.terminate()
            h.render.wait(timeout=30)
        assert stop_up(up) == 0


async def submit(
    http: httpx.AsyncClient, topic: str, key: str, context: str = "In brief.", force: bool = False
) -> str:
    config = {"topic": topic, "context": context, "quality": "low", "force": force}
    body = {"configuration": config}
    r = await http.post("/api/v1/videos/generate", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    return r.json()["job_id"]


async def completed(http: httpx.AsyncClient, job: str, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = (await http.get(f"/api/v1/videos/jobs/{job}/status")).json()
        assert status["status"] not in ("failed", "cancelled"), status
        if status["status"] == "completed":
            return
        await asyncio.sleep(1)
    raise AssertionError(f"{job} did not complete in {timeout_s} s")


async def rendering(h: Hosts, job: str, timeout_s: float = 120) -> None:
    """Wait until the render worker has started rendering one of `job`'s scenes."""
    deadline = time.monotonic() + timeout_s
    while f"render start job={job}" not in h.render_log_text():
        assert time.monotonic() < deadline, h.render_log_text()[-2000:]
        await asyncio.sleep(0.1)


def objects(s3: SeaweedFS, h: Hosts, under: str) -> dict[str, object]:
    return s3.keys(h.bucket, f"{h.prefix}/{under}")


async def play_and_seek(api: str, job: str) -> None:
    """The web app's player (Debian's Chromium) plays the presigned video and seeks in it."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = await browser.new_page(bypass_csp=True)  # wait_for_function polls with eval
        await page.goto(f"{api}/videos/status/{job}")
        await page.wait_for_function(
            "document.getElementById('player').readyState >= 2", timeout=30_000
        )
        assert (await page.evaluate("document.getElementById('player').src")).startswith(
            "http://127.0.0.1:"
        )
        duration = await page.evaluate("document.getElementById('player').duration")
        seeked = await page.evaluate(
            """(t) => new Promise((resolve) => {
                const v = document.getElementById('player');
                v.addEventListener('seeked', () => resolve(v.currentTime), { once: true });
                v.currentTime = t;
            })""",
            duration / 2,
        )
        assert duration > 5 and abs(seeked - duration / 2) < 1.0  # offline: "In brief." once
        await browser.close()


async def test_two_hosts_walkthrough_presigned_media_reuse_and_delete(
    hosts: Hosts, seaweed: SeaweedFS, tmp_path: Path
) -> None:
    h = hosts
    walk = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-euo", "pipefail", "-c", readme_walkthrough()],
        env=os.environ | {"T2M_API": h.api},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert walk.returncode == 0, walk.stdout + walk.stderr
    assert "\ncompleted completed 100.0\n" in walk.stdout
    assert "range request: HTTP 206" in walk.stdout
    job = re.search(r"job: (video-\S+)", walk.stdout).group(1)  # type: ignore[union-attr]
    assert (tmp_path / f"{job}.mp4").stat().st_size > 50_000
    assert (tmp_path / f"{job}.vtt").read_text().startswith("WEBVTT")
    assert (tmp_path / f"{job}.png").read_bytes().startswith(b"\x89PNG")
    assert "render start" in h.render_log_text(), "the render host did the rendering"
    assert h.mp4s_on_hosts() == [], "no host keeps a video"
    renders = objects(seaweed, h, "renders/")
    assert any(k.endswith(".mp4") for k in renders)
    assert objects(seaweed, h, "llm-cache/"), "model responses are cached in S3"
    assert f"{h.prefix}/jobs/{job}/video.mp4" in objects(seaweed, h, f"jobs/{job}/")

    async with httpx.AsyncClient(base_url=h.api, timeout=30) as http:
        urls = (await http.get(f"/api/v1/videos/jobs/{job}/video-url")).json()
        for name in ("video_url", "download_url", "thumbnail_url", "subtitles_url"):
            assert urls[name].startswith(seaweed.endpoint) and "X-Amz-Signature=" in urls[name]
        status, body, _ = http_get(urls["video_url"], {"Range": "bytes=0-1023"})
        assert status == 206 and len(body) == 1024 and body[4:8] == b"ftyp"
        status, body, headers = http_get(urls["download_url"])
        assert status == 200 and len(body) == (tmp_path / f"{job}.mp4").stat().st_size
        assert headers["Content-Disposition"].startswith("attachment")
        assert http_get(urls["thumbnail_url"])[1].startswith(b"\x89PNG")
        assert http_get(urls["subtitles_url"])[1].startswith(b"WEBVTT")
        redirect = await http.get(f"/api/v1/videos/jobs/{job}/stream")
        assert redirect.status_code == 307
        assert redirect.headers["location"].startswith(seaweed.endpoint)
        await play_and_seek(h.api, job)

        # the walkthrough's video made again (`force`: not a copy of the finished video): every
        # scene's render comes from S3, none is rendered or uploaded again
        context = "In a right triangle a^2 + b^2 = c^2."
        again = await submit(http, "Pythagorean Theorem", "again-1", context, force=True)
        await completed(http, again)
        assert objects(seaweed, h, "renders/") == renders
        assert f"render reused job={again}" in h.render_log_text()
        assert f"render start job={again}" not in h.render_log_text()

        r = await http.delete(f"/api/v1/jobs/{again}")
        assert r.status_code == 204
        assert objects(seaweed, h, f"jobs/{again}/") == {}
        assert objects(seaweed, h, f"jobs/{job}/"), "another job's objects stay"
        assert objects(seaweed, h, "renders/") == renders, "shared renders stay"
    assert h.mp4s_on_hosts() == []


async def test_a_render_host_killed_mid_render_is_replaced_by_a_fresh_one(hosts: Hosts) -> None:
    h = hosts
    async with httpx.AsyncClient(base_url=h.api, timeout=30) as http:
        job = await submit(http, "Prime numbers", "kill-1")
        await rendering(h, job)
        assert h.render is not None
        h.render.send_signal(signal.SIGKILL)
        h.render.wait()
        h.start_render_worker("c")  # a new machine: empty data dir, nothing cached locally
        await completed(http, job)
        assert f"render start job={job}" in h.render_log_text()
        assert (await http.get(f"/api/v1/videos/jobs/{job}/video-url")).status_code == 200
    assert h.mp4s_on_hosts() == []


async def test_an_s3_outage_mid_job_is_ridden_out(hosts: Hosts, seaweed: SeaweedFS) -> None:
    h = hosts
    async with httpx.AsyncClient(base_url=h.api, timeout=30) as http:
        job = await submit(http, "Ocean tides", "outage-1")
        await rendering(h, job)
        stopped = datetime.now()
        seaweed.stop()
        try:
            await asyncio.sleep(3)
            health = await http.get("/health")
            assert health.status_code == 503 and health.json()["storage"].startswith("error")
            await asyncio.sleep(17)
            status = (await http.get(f"/api/v1/videos/jobs/{job}/status")).json()
            assert status["status"] == "running", status
        finally:
            seaweed.start()
        await completed(http, job)
        assert (await http.get("/health")).status_code == 200
    # the render in flight could store its video only once S3 was back (boto3's retries inside the
    # activity, or Temporal's retry of it); it was neither lost nor failed
    done = re.search(rf"^(\S+ \S+) INFO \S+ render done job={job}", h.render_log_text(), re.M)
    assert done, h.render_log_text()[-2000:]
    assert datetime.strptime(done.group(1), "%Y-%m-%d %H:%M:%S,%f") - stopped > timedelta(
        seconds=19
    )


async def test_bad_s3_settings_refuse_to_start_in_one_line(
    seaweed: SeaweedFS, tmp_path: Path
) -> None:
    env = os.environ | seaweed.env | {"T2M_DATA_DIR": str(tmp_path / "data")}
    wrong_key = env | {
        "T2M_STORAGE_URL": f"s3://{seaweed.bucket}",
        "AWS_SECRET_ACCESS_KEY": "not-the-secret",
    }
    no_bucket = env | {"T2M_STORAGE_URL": "s3://no-such-bucket/t2m"}
    for command, environ, why in (
        ("worker", wrong_key, "denied"),
        ("up", no_bucket, "bucket 'no-such-bucket' does not exist"),
    ):
        done = await asyncio.to_thread(
            subprocess.run, [T2M, command], env=environ, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        line = done.stderr.strip()
        assert "\n" not in line and line.startswith(f"t2m {command}: refusing to start"), line
        assert why in line, line
    assert not (tmp_path / "data" / "logs").exists(), "nothing was started"
