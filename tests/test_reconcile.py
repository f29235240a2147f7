"""The catalog agrees with Temporal: rows left queued/running for closed or missing workflows are
repaired by the reconciler, run by a Temporal Schedule (real server, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter

from temporalio.client import Client, ScheduleActionStartWorkflow, WorkflowFailureError
from temporalio.testing import ActivityEnvironment

from activities.catalog import CatalogActivities
from activities.messages import ReconcileRequest
from t2m.catalog.db import JobStore
from t2m.config import Settings
from t2m.vocabulary.job import JobRecord, JobStatus
from t2m.vocabulary.request import VideoRequest
from tests.fakes import Fakes, running
from tests.helpers import asgi_client, catalog_request
from workflows.maintenance import ReconcileWorkflow, ensure_reconcile_schedule, schedule_id
from workflows.video import VideoWorkflow

WORKFLOWS = (VideoWorkflow, ReconcileWorkflow)


async def corrupt(jobs: JobStore, job_id: str, status: str = "running") -> None:
    """Leave the row saying `status`, as a crash mid-write would."""
    row = await jobs.get(job_id)
    assert row is not None
    await jobs.record(
        JobRecord(
            job_id=job_id,
            owner=row.owner,
            request=row.request,
            status=status,
            progress=JobStatus(job_id=job_id, status=status, percentage=95.0),
        )
    )


async def test_rows_that_disagree_with_temporal_are_repaired(
    client: Client, jobs: JobStore
) -> None:
    catalog = CatalogActivities(jobs, client)
    fakes = Fakes(catalog=[catalog.record_job, catalog.reconcile_catalog])
    done, missing = f"video-{uuid.uuid4()}", f"video-{uuid.uuid4()}"
    async with running(client, fakes, WORKFLOWS) as queue:
        req = VideoRequest(topic="Tides", model="fake/model", owner="kim")
        await client.execute_workflow(VideoWorkflow.run, req, id=done, task_queue=queue)
        await corrupt(jobs, done)
        await jobs.create(missing, catalog_request("kim"), "normal")  # never started
        report = await client.execute_workflow(
            ReconcileWorkflow.run,
            ReconcileRequest(grace_s=0),
            id=f"reconcile-{uuid.uuid4()}",
            task_queue=queue,
        )
    assert report.repaired[done] == "completed" and report.repaired[missing] == "failed"
    row = await jobs.get(done)
    assert row is not None and row.status == "completed" and row.completed_at is not None
    assert row.artifacts is not None and row.artifacts.video_key == "v.mp4"
    assert row.progress is not None and row.progress.percentage == 100
    gone = await jobs.get(missing)
    assert gone is not None and gone.status == "failed" and "never started" in (gone.error or "")


async def test_a_fresh_row_of_a_starting_retry_is_left_alone(
    client: Client, jobs: JobStore
) -> None:
    catalog = CatalogActivities(jobs, client)
    fakes = Fakes(catalog=[catalog.record_job, catalog.reconcile_catalog])
    job = f"video-{uuid.uuid4()}"
    async with running(client, fakes, WORKFLOWS) as queue:
        req = VideoRequest(topic="Tides", model="fake/model", owner="kim")
        await client.execute_workflow(VideoWorkflow.run, req, id=job, task_queue=queue)
        await jobs.requeue(job)  # written after the run closed: a retry on its way
        report = await ActivityEnvironment().run(
            catalog.reconcile_catalog, ReconcileRequest(grace_s=600)
        )
    assert job not in report.repaired
    row = await jobs.get(job)
    assert row is not None and row.status == "queued"


async def test_a_retry_whose_run_never_started_gets_its_last_runs_outcome(
    client: Client, jobs: JobStore
) -> None:
    """A retry or next version requeued the row (letting go of its run), and its run never
    started (the API stopped in between). The reconciler wrote the closed run's outcome as that
    run, which the row refuses, and reported it repaired on every pass: the row said queued for
    good, counted against its owner's active jobs."""
    catalog = CatalogActivities(jobs, client)
    fakes = Fakes(catalog=[catalog.record_job, catalog.reconcile_catalog])
    job = f"video-{uuid.uuid4()}"
    async with running(client, fakes, WORKFLOWS) as queue:
        req = VideoRequest(topic="Tides", model="fake/model", owner="kim")
        await client.execute_workflow(VideoWorkflow.run, req, id=job, task_queue=queue)
        await jobs.requeue(job)  # and no run started
        env = ActivityEnvironment()
        first = await env.run(catalog.reconcile_catalog, ReconcileRequest(grace_s=0))
        again = await env.run(catalog.reconcile_catalog, ReconcileRequest(grace_s=0))
    assert first.repaired[job] == "completed" and job not in again.repaired
    row = await jobs.get(job)
    assert row is not None and row.status == "completed" and row.completed_at is not None
    assert row.artifacts is not None and row.artifacts.video_key == "v.mp4"


async def test_the_worker_schedules_the_reconciler_and_runs_it_at_start(
    client: Client, settings: Settings, jobs: JobStore
) -> None:
    catalog = CatalogActivities(jobs, client)
    fakes = Fakes(catalog=[catalog.record_job, catalog.reconcile_catalog])
    async with running(client, fakes, WORKFLOWS) as queue:
        settings = settings.model_copy(
            update={"task_queue_prefix": queue.removesuffix("-video"), "reconcile_grace_s": 0}
        )
        job = f"video-{uuid.uuid4()}"
        await jobs.create(job, catalog_request("kim"), "normal")
        await ensure_reconcile_schedule(client, settings)
        handle = client.get_schedule_handle(schedule_id(settings))
        try:
            desc = await handle.describe()
            assert desc.schedule.spec.intervals[0].every.total_seconds() == 300
            for _ in range(100):
                row = await jobs.get(job)
                if row is not None and row.status == "failed":
                    break
                await asyncio.sleep(0.1)
            assert row is not None and row.status == "failed"
        finally:
            await handle.delete()


async def test_a_restarted_worker_applies_changed_reconcile_settings_to_the_schedule(
    client: Client, settings: Settings
) -> None:
    """The schedule outlives the worker that made it: a worker started with another
    T2M_RECONCILE_EVERY_S / T2M_RECONCILE_GRACE_S updates it (they used to be ignored)."""
    async with running(client, Fakes(), WORKFLOWS) as queue:
        settings = settings.model_copy(update={"task_queue_prefix": queue.removesuffix("-video")})
        handle = client.get_schedule_handle(schedule_id(settings))
        try:
            await ensure_reconcile_schedule(client, settings)
            changed = {"reconcile_every_s": 60, "reconcile_grace_s": 30.0}
            await ensure_reconcile_schedule(client, settings.model_copy(update=changed))
            desc = await handle.describe()
        finally:
            await handle.delete()
    assert desc.schedule.spec.intervals[0].every.total_seconds() == 60
    action = desc.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    [req] = await client.data_converter.decode(action.args, [ReconcileRequest])  # type: ignore[arg-type]
    assert req == ReconcileRequest(grace_s=30.0)


async def test_cancel_right_after_create_ends_cancelled_fifty_times_out_of_fifty(
    client: Client, settings: Settings, jobs: JobStore
) -> None:
    """The race that left rows 'running': a cancel while the job's first catalog write is in
    flight. Through the API, with the real catalog, 50 times."""
    catalog = CatalogActivities(jobs, client)
    fakes = Fakes(catalog=[catalog.record_job, catalog.reconcile_catalog], render_delay_s=5.0)
    async with running(client, fakes, WORKFLOWS) as queue:
        api_settings = settings.model_copy(
            update={"task_queue_prefix": queue.removesuffix("-video")}
        )
        async with asgi_client(api_settings) as http:

            async def create_and_cancel(i: int) -> str:
                body = {
                    "configuration": {"topic": f"Race {i} {queue}", "model": "offline/templates"}
                }
                job = (await http.post("/api/v1/videos/generate", json=body)).json()["job_id"]
                r = await http.post(f"/api/v1/jobs/{job}/cancel")
                assert r.status_code in (202, 409), r.text
                return job

            ids = await asyncio.gather(*(create_and_cancel(i) for i in range(50)))
            for job in ids:
                with contextlib.suppress(WorkflowFailureError):
                    await asyncio.wait_for(client.get_workflow_handle(job).result(), 60)
    rows = [await jobs.get(job) for job in ids]
    assert Counter(r.status for r in rows if r is not None) == Counter({"cancelled": 50})
