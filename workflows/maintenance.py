"""Keeping the catalog true to Temporal: a `ReconcileWorkflow` run by a Temporal Schedule.

Rows that say queued/running while their workflow has closed (or never existed) are repaired
from the workflow's outcome: after a crash between the API's insert and the workflow's start, a
worker killed while writing the row, or anything else that left the two disagreeing. The worker
that serves the video queue creates the schedule and triggers one run at start-up.
"""

from __future__ import annotations

import contextlib
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
)

with workflow.unsafe.imports_passed_through():
    from activities.messages import ReconcileReport, ReconcileRequest
    from t2m.config import Settings
    from workflows.steps import WORK_RETRY, sibling_queue


@workflow.defn
class ReconcileWorkflow:
    @workflow.run
    async def run(self, req: ReconcileRequest) -> ReconcileReport:
        return await workflow.execute_activity(
            "reconcile_catalog",
            req,
            result_type=ReconcileReport,
            task_queue=sibling_queue("llm"),
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=WORK_RETRY,
        )


def schedule_id(settings: Settings) -> str:
    return f"{settings.task_queue_prefix}-reconcile"


async def ensure_reconcile_schedule(client: Client, settings: Settings) -> None:
    """Create the reconcile schedule if it is missing, then run it once now."""
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
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(schedule_id(settings), schedule)
    await client.get_schedule_handle(schedule_id(settings)).trigger()
