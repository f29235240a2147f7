"""The `record_job` activity: the workflow's state changes, written to the job catalog."""

from __future__ import annotations

from temporalio import activity

from t2m.db import JobStore
from workflows.contracts import JobRecord, Usage


def usage_summary(per_stage: dict[str, Usage]) -> dict:
    """`{"stages": {stage: usage}, "total": usage}` as stored and shown."""
    total = Usage()
    for u in per_stage.values():
        total = total.plus(u)
    return {
        "stages": {k: v.model_dump() for k, v in per_stage.items()},
        "total": total.model_dump(),
    }


class CatalogActivities:
    def __init__(self, jobs: JobStore | None) -> None:
        self.jobs = jobs
        """None when the worker runs without a database (e.g. the CLI's ephemeral stack)."""

    @activity.defn(name="record_job")
    async def record_job(self, rec: JobRecord) -> None:
        if self.jobs is None:
            activity.logger.debug("no job catalog configured; %s is %s", rec.job_id, rec.status)
            return
        await self.jobs.record(
            rec.job_id,
            rec.status,
            owner=rec.owner,
            request=rec.request,
            error=rec.error,
            progress=rec.progress.model_dump(mode="json"),
            usage=usage_summary(rec.progress.usage),
            artifacts=rec.artifacts.model_dump() if rec.artifacts else None,
            checkpoint=rec.checkpoint.model_dump(mode="json") if rec.checkpoint else None,
        )
