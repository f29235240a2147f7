"""Keeping the catalog true to Temporal: a `ReconcileWorkflow` run by a Temporal Schedule.

Rows that say queued/running while their workflow has closed (or never existed) are repaired
from the workflow's outcome: after a crash between the API's insert and the workflow's start, a
worker killed while writing the row, or anything else that left the two disagreeing. The worker
that serves the video queue creates the schedule and triggers one run at start-up.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from activities.messages import ReconcileReport, ReconcileRequest
    from t2m.config import Settings
    from workflows.activity_table import RECONCILE_CATALOG


@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class ReconcileWorkflow:
    @workflow.run
    async def run(self, req: ReconcileRequest) -> ReconcileReport:
        return await RECONCILE_CATALOG.run(req, summary="reconcile the catalog with Temporal")


def schedule_id(settings: Settings) -> str:
    return f"{settings.task_queue_prefix}-reconcile"


async def ensure_reconcile_schedule(client: Client, settings: Settings) -> None:
    """Create the reconcile schedule, or update it to the settings' interval and grace, then
    run it once now."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileWorkflow.run,
            ReconcileRequest(grace_s=settings.reconcile_grace_s),
            id=schedule_id(settings),
            task_queue=settings.queue("video"),
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.reconcile_every_s))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    handle = client.get_schedule_handle(schedule_id(settings))
    try:
        await client.create_schedule(handle.id, schedule)
    except ScheduleAlreadyRunningError:  # made by an earlier start: its settings may have changed

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await handle.update(replace)
    await handle.trigger()
