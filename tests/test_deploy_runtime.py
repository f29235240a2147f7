"""What the deployables promise at run time, against the real app and services: the image's own
environment admits nobody anonymously, the probes answer per their contract, /health and /metrics
are not served through a proxy, and a render host whose jail cannot be built refuses the render
queue with the reason instead of crashing."""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import worker
from t2m.catalog.storage import storage_from_url
from t2m.config import Settings, get_settings, secrets_dir
from t2m.jail import bwrap as jail
from t2m.jail import self_test
from tests.helpers import asgi_client
from tests.seaweed import SeaweedFS, http_get
from tests.test_deploy import t2m_environ

ROOT = Path(__file__).resolve().parents[1]


def image_env(dockerfile: str) -> dict[str, str]:
    """The runtime stage's ENV, as `docker run <image>` starts with it."""
    runtime = re.split(r"^FROM ", dockerfile, flags=re.M)[-1]
    joined = re.sub(r"\\\n\s*", " ", runtime)
    env: dict[str, str] = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            env |= dict(item.split("=", 1) for item in shlex.split(line[4:]))
    return env


def image_settings(dockerfile: str, services: Settings) -> Settings:
    """The test's services (Temporal, PostgreSQL, storage) with every other setting as the image
    leaves it: what `docker run -p 8000:8000 <image>` serves."""
    with t2m_environ(image_env(dockerfile)):
        image = Settings(_env_file=None)  # type: ignore[call-arg]
    return services.model_copy(update={"dev_user": image.dev_user, "api_host": image.api_host})


HOSTS = ["localhost", "127.0.0.1", "[::1]", "localhost:8000", "t2m.example.com"]


async def anonymous_answers(settings: Settings) -> dict[str, int]:
    async with asgi_client(settings) as http:
        return {h: (await http.get("/api/v1/jobs", headers={"Host": h})).status_code for h in HOSTS}


async def test_the_image_admits_nobody_without_credentials_whatever_the_host(
    settings: Settings,
) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    env = image_env(dockerfile)
    assert env["T2M_DEV_USER"] == "" and env["T2M_API_HOST"] == "0.0.0.0", env
    assert await anonymous_answers(image_settings(dockerfile, settings)) == dict.fromkeys(
        HOSTS, 401
    )
    # Put the defect back (no dev-identity setting in the image): a loopback Host is an admin.
    before = re.sub(r" \\\n\s+T2M_API_HOST=0.0.0.0 \\\n\s+T2M_DEV_USER=\"\"", "", dockerfile)
    assert "T2M_DEV_USER" not in image_env(before)
    answers = await anonymous_answers(image_settings(before, settings))
    assert answers["localhost"] == 200 and answers["t2m.example.com"] == 401


async def test_livez_and_readyz_do_not_depend_on_workers(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """No worker polls this test's queues: the API can still take requests (ready), while
    /health, for people and alerts, says the service is degraded."""
    live = await api.get("/livez")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ok", "temporal": "ok", "database": "ok", "storage": "ok"}
    health = await api.get("/health")
    assert health.status_code == 503
    assert health.json()["workers_render"] == f"error: no worker polls {settings.queue('render')}"


async def test_readyz_fails_when_its_own_dependency_does(
    settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    broken = settings.model_copy(update={"storage_url": f"file://{root}"})
    async with asgi_client(broken) as http:
        assert (await http.get("/readyz")).status_code == 200
        shutil.rmtree(root)
        root.write_text("")  # the storage is gone: a file is in its place
        ready = await http.get("/readyz")
        assert (await http.get("/livez")).status_code == 200
    assert ready.status_code == 503 and ready.json()["storage"].startswith("error")


@pytest.mark.parametrize(
    "header", [{"X-Forwarded-For": "203.0.113.7"}, {"Forwarded": "for=203.0.113.7"}]
)
async def test_health_and_metrics_are_not_served_through_a_proxy(
    api: httpx.AsyncClient, header: dict[str, str]
) -> None:
    assert (await api.get("/health", headers=header)).status_code == 404
    assert (await api.get("/metrics", headers=header)).status_code == 404
    assert (await api.get("/metrics")).status_code == 200  # Prometheus, straight to the pod
    assert (await api.get("/livez", headers=header)).status_code == 200


async def test_a_jail_that_cannot_be_built_refuses_the_render_queue_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """A real OS error while building the jail (here its uid-slot lock dir cannot be made: a file
    is in the way) is "the jail is unavailable: <reason>", not a crash of the worker."""
    assert jail.os.geteuid() == 0, "the slot locks are taken by a root worker"
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setattr(jail, "SLOT_LOCK_DIR", blocker / "slots")
    with pytest.raises(jail.JailUnavailable, match="NotADirectoryError"):
        await self_test.check_jail()
    with caplog.at_level(logging.ERROR, logger="t2m.worker"):
        assert await worker.jail_ready(["video", "render"]) == ["video"]
    assert "the render jail is unavailable: NotADirectoryError" in caplog.text


def test_settings_from_secret_files_with_the_environment_winning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mounted Secret (one file per variable) supplies what the environment does not."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "T2M_DATABASE_URL").write_text("postgresql://t2m:from-file@db/t2m\n")
    (secrets / "T2M_SECRET_KEY").write_text("key-from-file")
    with t2m_environ({"T2M_SECRETS_DIR": str(secrets), "T2M_SECRET_KEY": "key-from-env"}):
        get_settings.cache_clear()
        try:
            settings = get_settings()
        finally:
            get_settings.cache_clear()
    assert settings.database_url == "postgresql://t2m:from-file@db/t2m"
    assert settings.secret_key == "key-from-env"
    with t2m_environ({"T2M_SECRETS_DIR": str(tmp_path / "none")}):
        assert secrets_dir() is None  # and no warning about a missing directory


def test_presigned_urls_name_the_public_s3_endpoint(aws_env: SeaweedFS, tmp_path: Path) -> None:
    """The pods reach S3 at one address (AWS_ENDPOINT_URL, here 127.0.0.1), browsers at another
    (T2M_S3_PUBLIC_ENDPOINT, here `localhost`): the URL names the public one, signed for it."""
    port = aws_env.endpoint.rsplit(":", 1)[1]
    public = f"http://localhost:{port}"
    storage = storage_from_url(f"s3://{aws_env.bucket}/public-{os.getpid()}", public)
    src = tmp_path / "v.mp4"
    src.write_bytes(b"0123456789" * 100)
    storage.put_file("jobs/j/video.mp4", src)  # through the pods' endpoint
    url = storage.presigned_url("jobs/j/video.mp4", 60)
    assert url.startswith(f"{public}/"), url
    status, body, _ = http_get(url)
    assert status == 200 and body == src.read_bytes()
    inside = storage_from_url(f"s3://{aws_env.bucket}/public-{os.getpid()}")
    assert inside.presigned_url("jobs/j/video.mp4", 60).startswith(aws_env.endpoint)
    with t2m_environ({"T2M_S3_PUBLIC_ENDPOINT": "s3.example.com"}), pytest.raises(ValueError):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_a_render_worker_serves_without_database_credentials(settings: Settings) -> None:
    """As deployed: `t2m worker --queues render` with no T2M_DATABASE_URL at all."""
    env = {
        "PATH": "/usr/bin:/bin",
        "T2M_DATA_DIR": str(settings.data_dir),
        "T2M_TEMPORAL_ADDRESS": settings.temporal_address,
        "T2M_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "T2M_TASK_QUEUE_PREFIX": settings.task_queue_prefix,
        "T2M_RENDER_CONCURRENCY": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py"), "--queues", "render"],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "worker serving" in line:
                break
        assert "worker serving" in "".join(lines), "".join(lines)
        assert settings.queue("render") in lines[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=130)
