"""The `record_job` activity: the workflow's state changes, written to the job catalog."""

from __future__ import annotations

from temporalio import activity

from t2m.db import JobStore
from t2m.models import JobRecord


class CatalogActivities:
    def __init__(self, jobs: JobStore | None) -> None:
        self.jobs = jobs
        """None when the worker runs without a database (e.g. the CLI's ephemeral stack)."""

    @activity.defn(name="record_job")
    async def record_job(self, rec: JobRecord) -> None:
        if self.jobs is None:
            activity.logger.debug("no job catalog configured; %s is %s", rec.job_id, rec.status)
            return
        await self.jobs.record(rec)
