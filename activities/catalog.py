"""Catalog activities: `record_job` writes the workflow's state changes to the job catalog, and
`reconcile_catalog` repairs rows that disagree with Temporal (see workflows/maintenance.py). Each
heartbeats while it waits (on a database that may be slow to answer during an outage)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError
from temporalio import activity
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.heartbeat import heartbeats
from activities.messages import ReconcileReport, ReconcileRequest, Reusable
from t2m.catalog.db import CatalogRejected, Job, JobStore
from t2m.errors import ErrorKind
from t2m.vocabulary.job import STAGES, JobRecord, JobState, JobStatus, VideoResult
from t2m.vocabulary.request import VideoRequest

_OUTCOME: dict[WorkflowExecutionStatus, JobState] = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TERMINATED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
}
PAGE = 100


class CatalogActivities:
    def __init__(
        self, jobs: JobStore | None, client: Client | None = None, any_owner: bool = False
    ) -> None:
        self.jobs = jobs
        """None when the worker runs without a database (e.g. the CLI's ephemeral stack)."""
        self.client = client
        self.any_owner = any_owner
        """Whether the whole-result cache may answer with another owner's video (an operator's
        opt-in, T2M_SHARE_CACHES_ACROSS_OWNERS)."""

    @activity.defn(name="record_job")
    @heartbeats
    async def record_job(self, rec: JobRecord) -> None:
        """Write the job's state, as the run that calls it (`run_id`, for the write guard).

        Data the database refuses, or a record that does not validate, fails at once
        (non-retryable `CatalogRejected`): writing it again cannot succeed. Anything else (the
        database unreachable, a timeout) propagates for the caller's retry policy.
        """
        if self.jobs is None:
            activity.logger.debug("no job catalog configured; %s is %s", rec.job_id, rec.status)
            return
        info = activity.info()
        run_id = info.workflow_run_id if info.workflow_id == rec.job_id else None
        try:
            written = await self.jobs.record(rec, run_id)
        except (CatalogRejected, ValidationError, PydanticSerializationError) as e:
            raise ApplicationError(
                str(e), type=ErrorKind.CATALOG_REJECTED, non_retryable=True
            ) from e
        if not written:
            activity.logger.warning(
                "catalog write of %s (%s, seq %d) skipped: the row has it or a newer state",
                rec.job_id,
                rec.status,
                rec.seq,
            )

    @activity.defn(name="find_reusable")
    @heartbeats
    async def find_reusable(self, req: VideoRequest) -> Reusable:
        """A finished job of the same owner that made the video `req` asks for (the whole-result
        cache; anyone's when the operator opted in)."""
        if self.jobs is None:
            return Reusable()
        job = await self.jobs.finished_like(req, self.any_owner)
        if job is None or job.artifacts is None:
            return Reusable()
        scenes = len(job.progress.scenes) if job.progress else 0
        return Reusable(job_id=job.id, artifacts=job.artifacts, scenes=scenes)

    @activity.defn(name="reconcile_catalog")
    @heartbeats
    async def reconcile_catalog(self, req: ReconcileRequest) -> ReconcileReport:
        report = ReconcileReport()
        if self.jobs is None or self.client is None:
            return report
        for job in await self._unfinished():
            activity.heartbeat(job.id)
            repaired = await self._repair(job, req.grace_s)
            if repaired is not None and await self._write(*repaired):
                report.repaired[job.id] = repaired[0].status
                activity.logger.warning("catalog repaired: %s is %s", job.id, repaired[0].status)
        return report

    async def _write(self, record: JobRecord, run_id: str | None) -> bool:
        """Write the repair as the run it describes (guarded); whether it was written. The
        guard refuses a run a retry let go of (`requeue`): if no run has taken the row over, the
        retry's run never started, and the row gets the outcome of the last run that did (its
        artifacts already in the row)."""
        assert self.jobs is not None
        if await self.jobs.record(record, run_id):
            return True
        return run_id is not None and await self.jobs.settle(
            record.model_copy(update={"artifacts": None})
        )

    async def _unfinished(self) -> list[Job]:
        assert self.jobs is not None
        rows: list[Job] = []
        for status in ("queued", "running"):
            offset = 0
            while True:
                page, _ = await self.jobs.list(None, status=status, limit=PAGE, offset=offset)
                rows, offset = rows + page, offset + PAGE
                if len(page) < PAGE:
                    break
        return rows

    async def _repair(self, job: Job, grace_s: float) -> tuple[JobRecord, str | None] | None:
        """The row this job should have and the run it describes (so the write cannot replace the
        row of a run that has since taken the job over), or None when the row is right (or cannot
        be told yet)."""
        assert self.client is not None
        handle = self.client.get_workflow_handle(job.id, result_type=VideoResult)
        stale = datetime.now(UTC) - job.updated_at > timedelta(seconds=grace_s)
        try:
            desc = await handle.describe()
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND or not stale:
                return None
            gone = "the job's workflow never started or no longer exists"
            return _record(job, "failed", gone), None
        if desc.status not in _OUTCOME:
            return None  # still running
        if not stale and not _closed_after_row(desc, job):
            return None  # the row is newer than the run: e.g. a retry is starting
        return await _outcome(handle, desc, job), desc.run_id


def _closed_after_row(desc: WorkflowExecutionDescription, job: Job) -> bool:
    return desc.close_time is not None and desc.close_time >= job.updated_at


async def _outcome(
    handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription, job: Job
) -> JobRecord:
    assert desc.status is not None
    status = _OUTCOME[desc.status]
    if status == "completed":
        result = await handle.result()
        return _record(job, "completed", None, result)
    error = None
    try:
        await handle.result()
    except WorkflowFailureError as e:
        error = str(e.cause) if e.cause is not None else str(e)
    return _record(job, status, error if status == "failed" else None)


def _record(
    job: Job, status: JobState, error: str | None, result: VideoResult | None = None
) -> JobRecord:
    progress = job.progress or JobStatus(job_id=job.id, status=status)
    update: dict[str, Any] = {"status": status, "error": error}
    if result is not None:
        update |= {
            "artifacts": result.artifacts,
            "percentage": 100.0,
            "current_stage": "completed",
            "stages_completed": list(STAGES[:-1]),
        }
    return JobRecord(
        job_id=job.id,
        owner=job.owner,
        request=job.request,
        status=status,
        progress=progress.model_copy(update=update),
        error=error,
        artifacts=result.artifacts if result else None,
    )
