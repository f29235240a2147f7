"""Every page and media response carries a Content-Security-Policy with `frame-ancestors 'none'`
and `X-Content-Type-Options: nosniff` (issue 18); pages allow exactly their own inline scripts
(by hash; tests/test_web.py runs them in a real browser under this policy), everything else
allows nothing."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from pathlib import Path

import httpx

from api.headers import OTHER_POLICY, PAGE_POLICY, PAGES
from t2m.catalog.db import JobStore
from t2m.catalog.storage import LocalStorage
from t2m.config import Settings
from t2m.vocabulary.job import JobRecord, JobStatus
from t2m.vocabulary.plan import Artifacts
from tests.helpers import asgi_client, catalog_request


def _has_headers(r: httpx.Response, page: bool) -> None:
    policy = r.headers["content-security-policy"]
    assert policy == (PAGE_POLICY if page else OTHER_POLICY), (r.url, policy)
    assert "frame-ancestors 'none'" in policy
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


def test_the_page_policy_pins_every_inline_script_and_nothing_else() -> None:
    scripts = [
        s
        for p in PAGES.glob("*.html")
        for s in re.findall(r"<script>(.*?)</script>", p.read_text(), re.S)
    ]
    assert scripts
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in PAGE_POLICY
    assert "'unsafe-inline'" not in PAGE_POLICY.split("script-src", 1)[1].split(";", 1)[0]
    assert "'unsafe-eval'" not in PAGE_POLICY and "object-src 'none'" in PAGE_POLICY


async def test_pages_api_answers_errors_and_media_carry_the_headers(
    settings: Settings, jobs: JobStore
) -> None:
    job_id = f"video-{uuid.uuid4()}"
    req = catalog_request("local")
    await jobs.create(job_id, req, "normal")
    key = f"jobs/{job_id}/video.mp4"
    src = Path(settings.data_dir) / "v.mp4"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(b"<html><script>alert(1)</script></html>")  # what a browser might sniff
    LocalStorage(settings.storage_dir).put_file(key, src)
    done = JobStatus(job_id=job_id, status="completed", percentage=100)
    artifacts = Artifacts(video_key=key, duration_s=1.0)
    await jobs.record(
        JobRecord(
            job_id=job_id, owner="local", request=req, status="completed", progress=done,
            artifacts=artifacts,
        )
    )  # fmt: skip
    async with asgi_client(settings) as http:
        for path in ("/videos", "/videos/create", "/signin", f"/videos/status/{job_id}"):
            r = await http.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            _has_headers(r, page=True)
        for path in (
            "/api/v1/jobs",
            f"/api/v1/videos/jobs/{job_id}/stream",
            f"/api/v1/videos/jobs/{job_id}/download",
            "/api/v1/jobs/video-00000000-0000-0000-0000-000000000000",  # a 404
            "/static/app.js",
        ):
            r = await http.get(path)
            assert r.status_code in (200, 404), (path, r.status_code)
            _has_headers(r, page=False)
        stream = await http.get(f"/api/v1/videos/jobs/{job_id}/stream")
        assert stream.headers["content-type"] == "video/mp4"  # never sniffed as HTML
        r = await http.post("/api/v1/videos/generate", content=b"x" * (300 * 1024))
        assert r.status_code == 413
        _has_headers(r, page=False)
        docs = await http.get("/docs")
        assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
        assert docs.headers["x-content-type-options"] == "nosniff"
