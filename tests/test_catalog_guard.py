"""Catalog writes are guarded (real PostgreSQL): a late write of a run never replaces a newer or
finished state, a new run of the job (a retry after `requeue`, a reset) takes the row over and the
run it replaced can no longer write, and data the database refuses fails at once."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.catalog import CatalogActivities
from t2m.catalog.db import CatalogRejected, JobStore
from t2m.vocabulary.job import JobRecord, JobState, JobStatus
from tests.helpers import catalog_request


def rec(job_id: str, status: JobState, seq: int = 0, percentage: float = 0.0) -> JobRecord:
    progress = JobStatus(job_id=job_id, status=status, percentage=percentage)
    return JobRecord(
        job_id=job_id,
        owner="guard",
        request=catalog_request("guard"),
        status=status,
        progress=progress,
        seq=seq,
    )


async def state(jobs: JobStore, job_id: str) -> tuple[str, float]:
    job = await jobs.get(job_id)
    assert job is not None and job.progress is not None
    return job.status, job.progress.percentage


async def test_a_late_write_of_a_run_never_replaces_a_newer_or_finished_state(
    jobs: JobStore,
) -> None:
    job = f"video-{uuid.uuid4()}"
    assert await jobs.record(rec(job, "running", seq=1, percentage=10), "run-1")
    assert await jobs.record(rec(job, "running", seq=3, percentage=50), "run-1")
    assert not await jobs.record(rec(job, "running", seq=2, percentage=20), "run-1"), "older"
    assert not await jobs.record(rec(job, "running", seq=3, percentage=30), "run-1"), "a retry"
    assert await state(jobs, job) == ("running", 50)
    assert await jobs.record(rec(job, "completed", seq=4, percentage=100), "run-1")
    assert not await jobs.record(rec(job, "running", seq=9, percentage=60), "run-1"), "ended"
    assert not await jobs.record(rec(job, "running", percentage=60), "run-1"), "unordered"
    assert await state(jobs, job) == ("completed", 100)
    # the reconciler writes a closed run's outcome unordered (seq 0): finished over finished is
    # allowed, and the run's sequence is kept
    assert await jobs.record(rec(job, "failed", percentage=100), "run-1")
    assert not await jobs.record(rec(job, "completed", seq=4, percentage=100), "run-1")
    assert await state(jobs, job) == ("failed", 100)


async def test_a_retry_takes_the_row_over_and_the_run_before_cannot_write_again(
    jobs: JobStore,
) -> None:
    job = f"video-{uuid.uuid4()}"
    await jobs.create(job, catalog_request("guard"), "normal")  # as the API does
    assert await jobs.record(rec(job, "running", seq=1, percentage=5), "run-1")
    assert await jobs.record(rec(job, "failed", seq=2, percentage=40), "run-1")
    await jobs.requeue(job)  # `run_again`: a retry or a next version
    assert (await state(jobs, job))[0] == "queued"
    assert not await jobs.record(rec(job, "running", seq=1, percentage=7), "run-1"), "let go"
    assert await jobs.record(rec(job, "running", seq=1, percentage=8), "run-2")
    assert await jobs.record(rec(job, "completed", seq=2, percentage=100), "run-2")
    assert not await jobs.record(rec(job, "failed", seq=5, percentage=40), "run-1")
    assert await state(jobs, job) == ("completed", 100)
    await jobs.requeue(job)  # the next version: a third run, with its own sequence from 1
    assert await jobs.record(rec(job, "running", seq=1, percentage=3), "run-3")
    assert not await jobs.record(rec(job, "completed", seq=2, percentage=100), "run-2")
    assert await state(jobs, job) == ("running", 3)


async def test_a_reset_run_takes_a_stranded_row_over(jobs: JobStore) -> None:
    """`temporal workflow reset` starts a new run of the same workflow id, without the API: its
    writes land (its sequence may restart lower), and the stranded run's late ones do not."""
    job = f"video-{uuid.uuid4()}"
    assert await jobs.record(rec(job, "running", seq=5, percentage=60), "stranded")
    assert await jobs.record(rec(job, "running", seq=2, percentage=20), "reset")
    assert not await jobs.record(rec(job, "running", seq=6, percentage=70), "stranded")
    assert await jobs.record(rec(job, "completed", seq=3, percentage=100), "reset")
    assert await state(jobs, job) == ("completed", 100)


async def test_writes_without_a_run_are_not_guarded(jobs: JobStore) -> None:
    """The API's own writes (a job that could not start) and a job's first write from the CLI."""
    job = f"video-{uuid.uuid4()}"
    assert await jobs.record(rec(job, "completed", percentage=100))
    assert await jobs.record(rec(job, "failed", percentage=0))
    assert await state(jobs, job) == ("failed", 0)


async def test_data_the_database_refuses_is_rejected_for_good(jobs: JobStore) -> None:
    job = f"video-{uuid.uuid4()}"
    bad = rec(job, "failed").model_copy(update={"error": "a NUL \x00 in a model's error text"})
    with pytest.raises(CatalogRejected, match="CharacterNotInRepertoire|Untranslatable"):
        await jobs.record(bad, "run-1")
    assert await jobs.get(job) is None

    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=job, workflow_run_id="run-1")
    with pytest.raises(ApplicationError) as failed:
        await env.run(CatalogActivities(jobs).record_job, bad)
    assert failed.value.non_retryable and failed.value.type == "CatalogRejected"


async def test_record_job_writes_as_the_run_that_calls_it(jobs: JobStore) -> None:
    job = f"video-{uuid.uuid4()}"
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=job, workflow_run_id="run-1")
    record_job = CatalogActivities(jobs).record_job
    await env.run(record_job, rec(job, "completed", seq=2, percentage=100))
    await env.run(record_job, rec(job, "running", seq=1, percentage=10))  # late: skipped
    assert await state(jobs, job) == ("completed", 100)
    row = await jobs.pool.fetchrow("SELECT run_id, seq FROM jobs WHERE id = $1", job)
    assert (row["run_id"], row["seq"]) == ("run-1", 2)
