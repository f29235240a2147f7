"""The workflow sandbox a worker runs its workflows in (`worker.WORKFLOW_RUNNER`): once litellm is
imported (a worker's first model call), its log filter sits on the `asyncio` logger; a record from
inside a workflow must not fail the workflow task."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker


@workflow.defn(sandboxed=True)
class LogsOnTheAsyncioLogger:
    @workflow.run
    async def run(self) -> str:
        # What asyncio itself does about a workflow's task ("Task exception was never retrieved").
        logging.getLogger("asyncio").warning("a record from inside a workflow")
        return "done"


async def test_a_workflow_logging_on_the_asyncio_logger_completes_after_litellm_loaded(
    client: Client,
) -> None:
    import litellm  # noqa: F401  (what a worker's first model call does: installs its filters)

    from worker import WORKFLOW_RUNNER

    assert logging.getLogger("asyncio").filters, "litellm no longer filters the asyncio logger"
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[LogsOnTheAsyncioLogger],
        workflow_runner=WORKFLOW_RUNNER,
    ):
        handle = await client.start_workflow(
            LogsOnTheAsyncioLogger.run,
            id=f"sandbox-{uuid.uuid4()}",
            task_queue=queue,
            execution_timeout=timedelta(seconds=30),
        )
        assert await handle.result() == "done"
