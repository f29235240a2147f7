"""Fair tenancy (issue 18): priorities above a user's ceiling are an admin's; quotas on active
jobs and creation rate answer 429 with Retry-After; a job's budget covers all its runs, counting
model calls booked as they complete (even after a cancel); and neither the whole-result cache nor
the model-response cache answers one owner with another's work unless the operator opts in.

Real services throughout: the API over ASGI on the session's Temporal and PostgreSQL, in-process
workers, the scripted model priced like a real one where spend matters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import litellm
import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.llm import LLMActivities
from activities.messages import StoryboardRequest
from t2m.authoring.llm import ModelClient
from t2m.catalog.db import CatalogUnavailable, JobStore
from t2m.catalog.storage import LocalStorage
from t2m.catalog.tenancy import Tenancy
from t2m.config import Settings
from t2m.vocabulary.plan import ScenePlan
from tests.helpers import asgi_client, catalog_request, free_port
from tests.scripted import ScriptedLLM, plan_json, scene_code
from tests.test_api import body, wait_status
from tests.test_workflow import PIPELINE, activity_types, request
from workflows.client import job_status, start_video

GENERATE = "/api/v1/videos/generate"
PAID = "scripted/paid"


@pytest.fixture
def paid(scripted: ScriptedLLM) -> Iterator[ScriptedLLM]:
    litellm.register_model(
        {
            PAID: {
                "input_cost_per_token": 2e-6,
                "output_cost_per_token": 1e-5,
                "litellm_provider": "scripted",
                "mode": "chat",
            }
        }
    )
    yield scripted


async def test_urgent_and_high_are_reserved_to_admins(api: httpx.AsyncClient, keys: dict) -> None:
    alice, admin = keys["alice"], keys["admin"]
    for priority in ("urgent", "high"):
        r = await api.post(GENERATE, json=body() | {"priority": priority}, headers=alice)
        assert r.status_code == 403, r.text
        assert f"priority '{priority}' is reserved to admins" in r.json()["detail"]
    assert (await api.get("/api/v1/jobs", headers=alice)).json()["total"] == 0  # nothing made
    for priority in ("normal", "low"):
        r = await api.post(GENERATE, json=body() | {"priority": priority}, headers=alice)
        assert r.status_code == 201 and r.json()["priority"] == priority
    r = await api.post(GENERATE, json=body() | {"priority": "urgent"}, headers=admin)
    assert r.status_code == 201 and r.json()["priority"] == "urgent"


async def test_the_priority_ceiling_is_a_setting(api_settings: Settings, keys: dict) -> None:
    settings = api_settings.model_copy(update={"user_max_priority": "high"})
    async with asgi_client(settings) as api:
        alice = keys["alice"]
        r = await api.post(GENERATE, json=body() | {"priority": "high"}, headers=alice)
        assert r.status_code == 201
        r = await api.post(GENERATE, json=body() | {"priority": "urgent"}, headers=alice)
        assert r.status_code == 403 and "ask for 'high' or lower" in r.json()["detail"]


async def test_active_jobs_quota_answers_429_with_retry_after(
    api_settings: Settings, keys: dict
) -> None:
    """No worker serves these queues: every job stays queued, so each counts as active."""
    settings = api_settings.model_copy(update={"max_active_jobs_per_user": 2})
    alice, bob, admin = keys["alice"], keys["bob"], keys["admin"]
    async with asgi_client(settings) as api:
        first = await api.post(GENERATE, json=body(), headers=alice | {"Idempotency-Key": "k1"})
        assert first.status_code == 201
        assert (await api.post(GENERATE, json=body(), headers=alice)).status_code == 201
        r = await api.post(GENERATE, json=body(), headers=alice)
        assert r.status_code == 429 and r.headers["Retry-After"] == "30"
        assert "2 jobs queued or running, the most a user may have (2)" in r.json()["detail"]
        # A replay of a job already made creates nothing: it is answered, not counted.
        again = await api.post(GENERATE, json=body(), headers=alice | {"Idempotency-Key": "k1"})
        assert again.status_code == 201 and again.json()["job_id"] == first.json()["job_id"]
        assert (await api.post(GENERATE, json=body(), headers=bob)).status_code == 201
        for _ in range(3):  # admins are not held to the quotas
            assert (await api.post(GENERATE, json=body(), headers=admin)).status_code == 201
        assert (await api.get("/api/v1/jobs", headers=alice)).json()["total"] == 2


async def test_creation_rate_quota_answers_429_and_deleting_buys_nothing(
    api_settings: Settings, keys: dict
) -> None:
    settings = api_settings.model_copy(update={"max_jobs_per_minute_per_user": 3})
    alice, bob = keys["alice"], keys["bob"]
    async with asgi_client(settings) as api:
        made = []
        for _ in range(3):
            r = await api.post(GENERATE, json=body(), headers=alice)
            assert r.status_code == 201
            made.append(r.json()["job_id"])
        r = await api.post(GENERATE, json=body(), headers=alice)
        assert r.status_code == 429
        assert "created 3 jobs in the last minute" in r.json()["detail"]
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert (await api.delete(f"/api/v1/jobs/{made[0]}", headers=alice)).status_code == 204
        assert (await api.post(GENERATE, json=body(), headers=alice)).status_code == 429
        assert (await api.post(GENERATE, json=body(), headers=bob)).status_code == 201


async def test_a_call_answered_after_its_job_was_cancelled_is_booked(
    tmp_path: Path, jobs: JobStore, paid: ScriptedLLM
) -> None:
    """The provider answers, then the job's call is cancelled (while the answer is being cached):
    the cost is on the job's row all the same, so a retry cannot spend it again for free."""
    row = await jobs.create(f"video-{uuid.uuid4()}", catalog_request("carol"), "normal")
    tenancy = Tenancy(jobs.pool)
    caching, release = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    class SlowCache(LocalStorage):
        def put_file(self, key: str, src: Path) -> None:
            loop.call_soon_threadsafe(caching.set)
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result()
            super().put_file(key, src)

    async def book(cost: float) -> None:
        await tenancy.book_spend(row.id, cost)

    model = ModelClient(SlowCache(tmp_path)).scoped("owner:carol", book)
    call = asyncio.create_task(model.complete(PAID, [{"role": "user", "content": "Plan: x"}]))
    await caching.wait()
    call.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await call
    booked = (await jobs.get(row.id)).booked_usd  # type: ignore[union-attr]
    assert booked > 0 and len(paid.prompts) == 1


async def test_a_storage_outage_neither_fails_a_paid_call_nor_has_it_paid_again(
    tmp_path: Path, jobs: JobStore, paid: ScriptedLLM
) -> None:
    """The provider answers and the cost is booked, then storage (S3 away) cannot cache the
    answer: the call still returns it. Failing it had the activity's retries pay again, up to
    six times."""
    row = await jobs.create(f"video-{uuid.uuid4()}", catalog_request("carol"), "normal")
    tenancy = Tenancy(jobs.pool)

    class Unreachable(LocalStorage):
        def exists(self, key: str) -> bool:
            raise ConnectionRefusedError("storage is unreachable")

        def put_file(self, key: str, src: Path) -> None:
            raise ConnectionRefusedError("storage is unreachable")

    async def book(cost: float) -> None:
        await tenancy.book_spend(row.id, cost)

    model = ModelClient(Unreachable(tmp_path)).scoped("owner:carol", book)
    done = await model.complete(PAID, [{"role": "user", "content": "Plan: s3 away"}])
    assert done.text and done.usage.cost_usd > 0 and len(paid.prompts) == 1
    booked = (await jobs.get(row.id)).booked_usd  # type: ignore[union-attr]
    assert booked == pytest.approx(done.usage.cost_usd)


async def test_a_catalog_outage_neither_fails_a_model_call_nor_shares_an_owners_cache(
    tmp_path: Path, jobs: JobStore, scripted: ScriptedLLM
) -> None:
    """A model activity names its cache partition by the job's owner, asked of the catalog: with
    the database away the lookup failed the call (~1 min of retries, then the scene). It now
    uses the job's own partition: it does not fail, and another owner's answers stay theirs."""
    storage = LocalStorage(tmp_path / "storage")
    alices = (await jobs.create(f"video-{uuid.uuid4()}", catalog_request("alice"), "normal")).id
    bobs = (await jobs.create(f"video-{uuid.uuid4()}", catalog_request("bob"), "normal")).id
    scene = ScenePlan(index=0, title="Tides", narration="The moon pulls the sea.")
    asked = StoryboardRequest(model="scripted/test", topic="Tides", scene=scene, scene_count=1)

    async def storyboard(tenancy: Tenancy, job_id: str) -> None:
        models = LLMActivities(ModelClient(storage), storage, tmp_path, tenancy)
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, workflow_id=job_id)
        assert (await env.run(models.storyboard_scene, asked)).storyboard.visuals

    await storyboard(Tenancy(jobs.pool), alices)  # alice's answer, in alice's partition
    pool = await asyncpg.create_pool(f"postgresql://t2m@127.0.0.1:{free_port()}/t2m", min_size=0)
    try:
        with pytest.raises(CatalogUnavailable):
            await Tenancy(pool).owner_of(bobs)  # the database is away
        await storyboard(Tenancy(pool), bobs)
    finally:
        await pool.close()
    assert len(scripted.prompts_for("storyboard_scene")) == 2  # not answered with alice's


async def test_cancel_and_retry_cannot_spend_past_the_budget(
    api_settings: Settings,
    client: Client,
    keys: dict,
    paid: ScriptedLLM,
    worker: None,
    jobs: JobStore,
) -> None:
    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("Stuck", "Stuck too", "Stuck three", duration=2.0)
        if task in ("write_scene_code", "fix_scene_code"):
            return scene_code(data["class_name"], "self.wait(900)")
        return None

    paid.handler = handler
    settings = api_settings.model_copy(update={"allowed_models": [PAID], "llm_cache": False})
    alice = keys["alice"]
    async with asgi_client(settings) as api:
        cfg: dict = {"model": PAID, "max_cost_usd": 0.5}
        job = (await api.post(GENERATE, json=body(**cfg), headers=alice)).json()["job_id"]
        while True:
            status = await wait_status(api, job, alice, {"running"})
            if [s["state"] for s in status["progress"]["scenes"]] == ["rendering"] * 3:
                break
            await asyncio.sleep(0.3)
        assert (await api.post(f"/api/v1/jobs/{job}/cancel", headers=alice)).status_code == 202
        await wait_status(api, job, alice, {"cancelled"})
        row = await jobs.get(job)
        assert row is not None and row.booked_usd > 0  # booked by the model activities
        shown = (await api.get(f"/api/v1/videos/jobs/{job}/status", headers=alice)).json()
        assert shown["budget"]["spent_usd"] == pytest.approx(row.booked_usd)

        # The retry runs on what is left of the job's budget, not on the whole of it again.
        assert (await api.post(f"/api/v1/jobs/{job}/retry", headers=alice)).status_code == 202
        run = await job_status(client.get_workflow_handle(job))
        assert run.max_cost_usd == pytest.approx(0.5 - row.booked_usd)
        await wait_status(api, job, alice, {"running"})
        assert (await api.post(f"/api/v1/jobs/{job}/cancel", headers=alice)).status_code == 202
        await wait_status(api, job, alice, {"cancelled"})

        # Calls that completed after a cancel are booked (as above) and count: once the booked
        # spend reaches the budget, the job cannot run again.
        await Tenancy(jobs.pool).book_spend(job, 0.5)
        r = await api.post(f"/api/v1/jobs/{job}/retry", headers=alice)
        assert r.status_code == 409 and "has spent its budget of $0.50" in r.json()["detail"]


def _reusing(task: str, data: dict) -> str | None:
    if task == "plan_video":
        return plan_json("One", "Two", "Three", duration=1.0)
    if task == "write_scene_code":
        return scene_code(data["class_name"], "self.play(FadeIn(Square()), run_time=0.5)")
    return None


async def test_another_owners_identical_request_is_made_anew_and_learns_nothing(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None
) -> None:
    scripted.handler = _reusing
    topic = f"Private {settings.task_queue_prefix}"
    first = await (await start_video(client, settings, request(topic=topic, reuse=True))).result()
    asked = len(scripted.prompts)

    bobs = await start_video(client, settings, request(topic=topic, owner="bob", reuse=True))
    await bobs.result()
    assert (await job_status(bobs)).reused_from is None  # never another owner's job id
    assert set(await activity_types(bobs)) >= PIPELINE  # made anew
    assert len(scripted.prompts_for("plan_video")) == 2  # the model asked anew, not its cache
    asked = len(scripted.prompts)

    # The same owner still gets both caches: the whole result, and (made anew) the responses.
    again = await start_video(client, settings, request(topic=topic, reuse=True))
    await again.result()
    assert (await job_status(again)).reused_from == first.job_id
    forced = await start_video(client, settings, request(topic=topic, reuse=False))
    await forced.result()
    assert (await job_status(forced)).reused_from is None
    assert len(scripted.prompts) == asked  # every answer came from the owner's cache


@pytest.mark.parametrize("settings", [{"share_caches_across_owners": True}], indirect=True)
async def test_an_operator_may_share_the_caches_across_owners(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None
) -> None:
    scripted.handler = _reusing
    topic = f"Shared {settings.task_queue_prefix}"
    first = await (await start_video(client, settings, request(topic=topic, reuse=True))).result()
    asked = len(scripted.prompts)
    bobs = await start_video(client, settings, request(topic=topic, owner="bob", reuse=True))
    await bobs.result()
    assert (await job_status(bobs)).reused_from == first.job_id
    forced = await start_video(client, settings, request(topic=topic, owner="bob", reuse=False))
    await forced.result()
    assert len(scripted.prompts) == asked
