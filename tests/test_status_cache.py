"""Status under load: one query per running job at a time, stale-while-revalidate, bounded when no
worker answers."""

from __future__ import annotations

import asyncio
import time

import httpx

from api.status_cache import StatusCache
from t2m.models import JobStatus


class Workflow:
    """Stands in for the query a snapshot refresh makes (the real one is tested below)."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self.delay_s = delay_s
        self.calls = 0
        self.percentage = 0.0
        self.status = "running"

    async def __call__(self, job_id: str, known: JobStatus | None) -> JobStatus:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        return JobStatus(job_id=job_id, status=self.status, percentage=self.percentage)


async def test_many_pollers_share_one_query_per_job() -> None:
    wf = Workflow()
    cache = StatusCache(wf, max_age_s=10)
    results = await asyncio.gather(*(cache.get("job-a") for _ in range(50)))
    assert wf.calls == 1 and {r.percentage for r in results} == {0.0}
    await asyncio.gather(*(cache.get("job-b") for _ in range(5)))
    assert wf.calls == 2


async def test_a_stale_snapshot_is_answered_at_once_while_one_refresh_runs() -> None:
    wf = Workflow(delay_s=0.3)
    cache = StatusCache(wf, max_age_s=0.05)
    await cache.get("job")
    wf.percentage = 50.0
    await asyncio.sleep(0.1)  # stale now
    t = time.perf_counter()
    stale = await asyncio.gather(*(cache.get("job") for _ in range(20)))
    assert time.perf_counter() - t < 0.1  # nobody waited for the slow query
    assert {s.percentage for s in stale} == {0.0} and wf.calls == 2
    await asyncio.sleep(0.4)
    assert (await cache.get("job")).percentage == 50.0


async def test_an_ended_job_leaves_the_cache() -> None:
    wf = Workflow()
    cache = StatusCache(wf, max_age_s=10)
    wf.status = "completed"
    assert (await cache.get("job")).status == "completed"
    await cache.get("job")
    assert wf.calls == 2  # not kept: the catalog row answers for ended jobs


async def test_status_without_a_worker_answers_within_its_bound(
    api: httpx.AsyncClient, keys: dict
) -> None:
    body = {"configuration": {"topic": "Nobody works on this", "quality": "low"}}
    job = (await api.post("/api/v1/videos/generate", json=body, headers=keys["alice"])).json()
    url = f"/api/v1/videos/jobs/{job['job_id']}/status"
    t = time.perf_counter()
    first = await api.get(url, headers=keys["alice"])
    first_s = time.perf_counter() - t
    assert first.status_code == 200 and first.json()["status"] in ("queued", "running")
    assert first_s < 6  # the query's 3 s timeout, then describe()
    t = time.perf_counter()
    for _ in range(20):
        assert (await api.get(url, headers=keys["alice"])).status_code == 200
    assert (time.perf_counter() - t) / 20 < 0.25  # the snapshot answers, not a new query
    await api.post(f"/api/v1/jobs/{job['job_id']}/cancel", headers=keys["alice"])
