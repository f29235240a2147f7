"""The Temporal side of a job, for the CLI and the API: connect, start `VideoWorkflow`, read its
status, and the search attributes the Web UI filters videos by."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import Any

from temporalio.api.common.v1 import Memo, Payload, WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
    GetWorkflowExecutionHistoryRequest,
)
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.common import Priority, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime

from t2m.config import Settings
from t2m.vocabulary.job import JobStatus, new_job_id
from t2m.vocabulary.request import VideoRequest
from workflows.search import SA_STAGE, SEARCH_ATTRIBUTES, search_attributes
from workflows.ui import static_details, static_summary
from workflows.video import STATUS_MEMO, VideoWorkflow

log = logging.getLogger(__name__)

QUERY_TIMEOUT = timedelta(seconds=3)
WATCH_TIMEOUT = timedelta(seconds=60)
"""Bound of one long poll of a run's history: the server answers one that saw no event after its
`frontend.longPollExpirationInterval` (20 s by default), so this only catches a server gone mute."""
_CLOSED = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
}


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client with t2m's data converter (pydantic models on both sides); a worker passes the
    runtime that exports its metrics.

    TLS, mTLS, an API key and gRPC metadata come from the Temporal SDKs' environment
    configuration (`temporalio.envconfig`): `TEMPORAL_API_KEY`, `TEMPORAL_TLS`,
    `TEMPORAL_TLS_SERVER_CA_CERT_PATH`, `TEMPORAL_TLS_CLIENT_CERT_PATH`/`_KEY_PATH`,
    `TEMPORAL_TLS_SERVER_NAME`, `TEMPORAL_GRPC_META_*`, or a profile (`TEMPORAL_PROFILE`) of the
    TOML file `TEMPORAL_CONFIG_FILE`. The address and namespace are `T2M_TEMPORAL_ADDRESS` and
    `T2M_TEMPORAL_NAMESPACE` when set, else `TEMPORAL_ADDRESS`/`TEMPORAL_NAMESPACE` (or the
    profile's), else t2m's defaults."""
    config = dict(ClientConfigProfile.load().to_client_connect_config())
    explicit = settings.model_fields_set
    if "temporal_address" in explicit or "target_host" not in config:
        config["target_host"] = settings.temporal_address
    if "temporal_namespace" in explicit or "namespace" not in config:
        config["namespace"] = settings.temporal_namespace
    return await Client.connect(
        **config,  # type: ignore[arg-type]
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )


async def ensure_search_attributes(client: Client) -> None:
    """Register t2m's search attributes in the client's namespace (idempotent)."""
    ns = client.namespace
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=ns)
    )
    missing = {n: t for n, t in SEARCH_ATTRIBUTES.items() if n not in listed.custom_attributes}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=ns, search_attributes=missing)
        )


FAIRNESS_KEY_MAX_BYTES = 64
"""Temporal's limit on a fairness key."""


def owner_fairness_key(owner: str) -> str:
    """The fairness key of an owner's jobs: the owner itself, or, for a name longer than Temporal
    allows, a digest of it (still one key per owner)."""
    if len(owner.encode()) <= FAIRNESS_KEY_MAX_BYTES:
        return owner
    return "sha256:" + hashlib.sha256(owner.encode()).hexdigest()[:56]


async def start_video(
    client: Client,
    settings: Settings,
    req: VideoRequest,
    job_id: str | None = None,
    *,
    priority_key: int = 3,
    fairness_key: str | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
) -> WorkflowHandle[Any, Any]:
    """Start a video workflow. Its task priority (1 = most urgent) and fairness key (default: one
    per owner; a batch such as `t2m eval` passes its own) are inherited by all its activities, so
    within a priority level the queues take turns between keys instead of first come, first
    served. The Web UI lists it by its topic (static summary) and shows who asked for what."""
    return await client.start_workflow(
        VideoWorkflow.run,
        req,
        id=job_id or new_job_id(),
        task_queue=settings.queue("video"),
        priority=Priority(
            priority_key=priority_key,
            fairness_key=fairness_key or owner_fairness_key(req.owner),
        ),
        id_reuse_policy=id_reuse_policy,
        static_summary=static_summary(req),
        static_details=static_details(req),
        search_attributes=search_attributes(req),
    )


HELD_AFTER_ATTEMPTS = 2
"""A workflow task that failed this many times in a row is not a hiccup: a bug in workflow code
or a deploy that cannot replay the run holds the job until an operator acts."""
HELD = "TemporalReportedProblems IS NOT NULL"
"""Set by the server on a run whose workflow task keeps failing (after
`system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute` failures; t2m's dev server
sets it to 2, a cluster should too)."""


def held_reason(desc: DescribeWorkflowExecutionResponse) -> str | None:
    """Why a running job makes no progress, when its workflow task keeps failing."""
    attempt = desc.pending_workflow_task.attempt
    running = desc.workflow_execution_info.status == WorkflowExecutionStatus.RUNNING
    if not running or attempt < HELD_AFTER_ATTEMPTS:
        return None
    return (
        f"held by a worker problem: the job's workflow task has failed {attempt - 1} times in a"
        " row (a bug in workflow code, or a deploy that cannot replay it); it goes on once an"
        " operator deploys a fix or rolls back (README: Stranded runs)"
    )


async def held_jobs(client: Client, settings: Settings, limit: int = 10) -> tuple[int, list[str]]:
    """How many running jobs are held by a failing workflow task, and the first few ids."""
    query = f'TaskQueue = "{settings.queue("video")}" AND ExecutionStatus = "Running" AND {HELD}'
    count = (await client.count_workflows(query)).count
    ids = [w.id async for w in client.list_workflows(query, limit=limit)] if count else []
    return count, ids


async def _queried(handle: WorkflowHandle[Any, Any]) -> JobStatus | None:
    """The workflow's own status, or None if no worker answers in time: a query needs a worker,
    so it is bounded instead of hanging, in all and not only per try: until a run's first
    workflow task completes the server holds one query for it and refuses the others
    (RESOURCE_EXHAUSTED), which the SDK retries, each try with its own RPC timeout (4 at once
    took 3.0, 6.3, 9.4 and 18.3 s). `asyncio.timeout`, not `wait_for`: Python 3.11's
    `wait_for` returns the answer when the caller is cancelled just as it arrives, and the cancel
    is lost (Ctrl-C on `t2m generate` then went unheard while the job ran on)."""
    try:
        async with asyncio.timeout(QUERY_TIMEOUT.total_seconds()):
            return await handle.query(VideoWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
    except Exception as e:  # no worker polling, a worker too busy, or the workflow not started
        log.info("status query of %s unanswered (%r): describe() instead", handle.id, e)
        return None


_TASK_TROUBLE = (
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
)


async def _memo_status(client: Client, payload: Payload | None) -> JobStatus | None:
    """The status a run keeps in its memo (`VideoWorkflow._publish_status`); None for a run that
    keeps none (started before it did) or one that cannot be read."""
    if payload is None:
        return None
    try:
        (status,) = await client.data_converter.decode([payload], [JobStatus])
    except Exception as e:  # e.g. another build's model: the query path answers instead
        log.warning("status memo unreadable (%s): querying", e)
        return None
    return status if isinstance(status, JobStatus) else None


def _memo_field(memo: Memo) -> Payload | None:
    return memo.fields.get(STATUS_MEMO)


async def _described(handle: WorkflowHandle[Any, Any], known: JobStatus | None) -> JobStatus:
    """What `describe()` adds to `known`, for a workflow no worker answered for."""
    status = known or JobStatus(job_id=handle.id, status="queued")
    try:
        async with asyncio.timeout(QUERY_TIMEOUT.total_seconds() + 1):  # see `_queried`
            desc = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
    except Exception:
        return status
    update: dict[str, Any] = {
        "current_stage": desc.typed_search_attributes.get(SA_STAGE) or status.current_stage,
        "held": held_reason(desc.raw_description),
    }
    if desc.status in _CLOSED:
        update["status"] = _CLOSED[desc.status]
    elif desc.status is not None and status.status == "queued":
        update["status"] = "running"
    return status.model_copy(update=update)


async def job_status(handle: WorkflowHandle[Any, Any], known: JobStatus | None = None) -> JobStatus:
    """The workflow's own status; if no worker answers in time, what `describe()` adds to `known`."""
    return await _queried(handle) or await _described(handle, known)


UNTAKEN_HISTORY = 3
"""A run's history until a worker completes its first workflow task: the start, that task
scheduled, and a cancel request or the task's start."""


def _untaken(desc: DescribeWorkflowExecutionResponse) -> bool:
    """Whether no worker has completed the running run's first workflow task yet: it is queued,
    and a status query would only wait for a worker (`QUERY_TIMEOUT`) to say so."""
    info = desc.workflow_execution_info
    return (
        info.status == WorkflowExecutionStatus.RUNNING
        and info.history_length <= UNTAKEN_HISTORY
        and desc.HasField("pending_workflow_task")
    )


async def job_status_for_decision(
    handle: WorkflowHandle[Any, Any], known: JobStatus | None = None
) -> JobStatus:
    """`job_status` for a decision (a cancel, a retry): a run no worker has taken yet is
    "queued" at once (a describe) instead of after the query's timeout."""
    try:
        desc = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
    except Exception:  # the server away, or no such run: the query path says what it can
        return await job_status(handle, known)
    if _untaken(desc.raw_description):
        queued = JobStatus(job_id=handle.id, status="queued")
        return (
            queued if known is None else known.model_copy(update={"status": "queued", "held": None})
        )
    return await job_status(handle, known)


async def job_status_since(
    client: Client, job_id: str, known: JobStatus, seen: str, grown_to: str = ""
) -> tuple[JobStatus, str]:
    """`job_status`, asked of the worker only if the workflow has moved on since `seen` (the run
    and history length at which `known` was its answer, as returned here; "": unknown); returns
    the status and its `seen` ("" when no worker answered, so that the next call asks again).
    `grown_to` is the run and length a watcher of its history (`history_growth`) saw since `seen`:
    the workflow has moved on, so the worker is asked at once, with no describe (~4 ms of server
    CPU spared); its answer is at least that recent, so it goes with `grown_to` (a later event
    only costs one more refresh). If no worker answers, the describe says what it can (`held`
    among it), as `job_status` does.

    The workflow's status changes only in its workflow tasks, and each one that completes adds
    events, so the same run at the same length has the same status. A describe costs the Temporal
    server about half of what a query costs it and the worker nothing (bench/status_cost.py), and
    a job waiting for a slot or rendering goes for long stretches without events. The describe's
    own view is current: a job held by a failing workflow task (whose retries add no events) says
    so. A run that keeps its status in its memo (`VideoWorkflow._publish_status`) is not asked
    at all: the describe carries the status.
    """
    handle = client.get_workflow_handle(job_id)
    if grown_to and grown_to != seen:
        if (status := await _queried(handle)) is not None:
            return status, grown_to
        return await _described(handle, known), ""
    try:
        desc = await client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=client.namespace, execution=WorkflowExecution(workflow_id=job_id)
            ),
            timeout=QUERY_TIMEOUT,
        )
    except Exception as e:  # the server away, or no such workflow yet: the query path answers
        log.info("describe of %s failed (%s): querying", job_id, e)
        return await job_status(handle, known), ""
    info = desc.workflow_execution_info
    now = f"{info.execution.run_id}/{info.history_length}"
    held = held_reason(desc)
    if now == seen:
        return (known if held == known.held else known.model_copy(update={"held": held})), now
    if (status := await _memo_status(client, _memo_field(info.memo))) is not None:
        return (status if held is None else status.model_copy(update={"held": held})), now
    if _untaken(desc):  # "" as for no answer: the row is read again at the next refresh
        return known.model_copy(update={"status": "queued", "held": None}), ""
    if (status := await _queried(handle)) is not None:
        return status, now
    return await _described(handle, known), ""


async def history_growth(
    client: Client, job_id: str, seen: str
) -> AsyncGenerator[tuple[str, JobStatus | None]]:
    """The `seen` of the run in `seen` (its run and history length, as `job_status_since` returns
    it) each time its history grows, and each time the server's long poll ends with no new event
    (every ~20 s), with the run's status at that length when the history says it: the last status
    its memo was given (`VideoWorkflow._publish_status`); None for a run that keeps none, and
    after a failed or timed-out workflow task until the next upsert (a held run's status says so
    only through a describe). Ends when the run closes.

    One long poll of the history at a time, held by the server until an event lands: watching a
    job that waits costs the server ~0.2 ms of CPU per 20 s (measured with 200 watched jobs),
    where asking whether it moved on (a describe) costs it ~4 ms each time.
    """
    run = seen.partition("/")[0]
    execution = WorkflowExecution(workflow_id=job_id, run_id=run)
    token, length = b"", 0
    memo: Payload | None = None
    status: JobStatus | None = None
    while True:
        page = await client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=client.namespace,
                execution=execution,
                next_page_token=token,
                wait_new_event=True,
            ),
            timeout=WATCH_TIMEOUT,
        )
        upserted: Payload | None = None
        for event in page.history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
                attributes = event.workflow_properties_modified_event_attributes
                upserted = _memo_field(attributes.upserted_memo) or upserted
            elif event.event_type in _TASK_TROUBLE:
                upserted, memo, status = None, None, None
        if upserted is not None and upserted != memo:
            memo, status = upserted, await _memo_status(client, upserted)
        if page.history.events:
            length = page.history.events[-1].event_id
        yield f"{run}/{length}", status
        if not page.next_page_token:  # the run closed
            return
        token = page.next_page_token
