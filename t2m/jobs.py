"""Starting video workflows and reading their status: shared by the CLI and the API."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)

from t2m.config import Settings
from workflows.contracts import (
    SA_MODEL,
    SA_OWNER,
    SA_QUALITY,
    SA_STAGE,
    SA_TOPIC,
    JobStatus,
    VideoRequest,
)
from workflows.video import VideoWorkflow

QUERY_TIMEOUT = timedelta(seconds=3)
_CLOSED = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
}


def new_job_id() -> str:
    return f"video-{uuid.uuid4()}"


async def start_video(
    client: Client,
    settings: Settings,
    req: VideoRequest,
    job_id: str | None = None,
    *,
    priority_key: int = 3,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
) -> WorkflowHandle:
    """Start a video workflow; its activities inherit its task priority (1 = most urgent)."""
    return await client.start_workflow(
        VideoWorkflow.run,
        req,
        id=job_id or new_job_id(),
        task_queue=settings.queue("video"),
        priority=Priority(priority_key=priority_key),
        id_reuse_policy=id_reuse_policy,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(SA_TOPIC, req.topic),
                SearchAttributePair(SA_OWNER, req.owner),
                SearchAttributePair(SA_STAGE, "queued"),
                SearchAttributePair(SA_QUALITY, req.quality),
                SearchAttributePair(SA_MODEL, req.model),
            ]
        ),
    )


async def job_status(handle: WorkflowHandle, known: JobStatus | None = None) -> JobStatus:
    """The workflow's own status; if no worker answers in time, what `describe()` adds to `known`.

    A query needs a worker, so it is bounded by an RPC timeout instead of hanging.
    """
    try:
        return await handle.query(
            VideoWorkflow.status, result_type=JobStatus, rpc_timeout=QUERY_TIMEOUT
        )
    except Exception:
        pass  # no worker polling, or the workflow has not started yet
    status = known or JobStatus(job_id=handle.id, status="queued")
    try:
        desc = await asyncio.wait_for(
            handle.describe(rpc_timeout=QUERY_TIMEOUT), QUERY_TIMEOUT.total_seconds() + 1
        )
    except Exception:
        return status
    update: dict = {
        "current_stage": desc.typed_search_attributes.get(SA_STAGE) or status.current_stage
    }
    if desc.status in _CLOSED:
        update["status"] = _CLOSED[desc.status]
    elif desc.status is not None and status.status == "queued":
        update["status"] = "running"
    return status.model_copy(update=update)
