"""Which workers serve t2m's task queues, for `/health` and the tests: the pollers the server
lists on each queue, and the workers' own heartbeats (Temporal's worker registry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import TaskQueueType, WorkerStatus
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
from temporalio.api.worker.v1 import WorkerHeartbeat
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, ListWorkersRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from t2m.config import Settings

POLLER_FRESH_S = 120
"""A worker re-polls at least every ~70 s; one not seen for longer is gone."""
WORKER_HEARTBEAT = timedelta(seconds=5)
"""How often a t2m worker tells the server it is alive (its runtime's worker heartbeat)."""
HEARTBEAT_STALE_S = 3 * WORKER_HEARTBEAT.total_seconds()
"""A worker whose last heartbeat is older than this is gone: a killed worker's just stop."""


async def queue_pollers(client: Client, settings: Settings) -> dict[str, list[PollerInfo]]:
    """The pollers the server lists on each t2m task queue, by kind. A server forgets them when
    it restarts (they are not in its database), lists a gone worker's until they age out, and
    does not list a worker whose task slots are all busy (it polls only with a slot free)."""
    kinds = {
        "video": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        "llm": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        "render": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        "media": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    }
    found: dict[str, list[PollerInfo]] = {}
    for kind, queue_type in kinds.items():
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=settings.queue(kind)),
                task_queue_type=queue_type,
            )
        )
        found[kind] = list(described.pollers)
    return found


_UNSUPPORTED = (
    RPCStatusCode.UNIMPLEMENTED,
    RPCStatusCode.FAILED_PRECONDITION,
    RPCStatusCode.PERMISSION_DENIED,
)
"""How a server without the worker registry (or with it off) refuses ListWorkers."""


async def worker_heartbeats(client: Client) -> list[WorkerHeartbeat]:
    """The last heartbeat of every worker the server knows of (Temporal's worker registry, one
    entry per worker process and task queue, kept ~5 min after its last heartbeat); none from a
    server without the feature or just restarted (it keeps them in memory)."""
    beats: list[WorkerHeartbeat] = []
    token = b""
    while True:
        try:
            page = await client.workflow_service.list_workers(
                ListWorkersRequest(namespace=client.namespace, next_page_token=token)
            )
        except RPCError as e:
            if e.status in _UNSUPPORTED:
                return []
            raise
        beats += [w.worker_heartbeat for w in page.workers_info]
        token = page.next_page_token
        if not token:
            return beats


async def queue_workers(client: Client, settings: Settings) -> dict[str, str]:
    """For each t2m task queue, "ok" when a live worker serves it, else why not.

    A worker is live while its heartbeats (every `WORKER_HEARTBEAT`) are fresh and it is
    running; a poller counts unless its worker's heartbeats stopped (killed) or said it was
    stopping before that poll. So a killed worker is seen gone within `HEARTBEAT_STALE_S` (its
    pollers stayed listed for `POLLER_FRESH_S`), a worker busy in every slot (it does not poll)
    still counts, and a worker that has not yet sent a heartbeat counts by its polls, even
    under the identity of a dead one (a restarted container's `1@pod`)."""
    now = datetime.now(UTC)
    beats = await worker_heartbeats(client)
    found: dict[str, str] = {}
    for kind, pollers in (await queue_pollers(client, settings)).items():
        queue = settings.queue(kind)
        live: set[str] = set()
        last_words: dict[str, datetime] = {}  # identity: its latest heartbeat, if none is live
        for beat in (b for b in beats if b.task_queue == queue):
            at = beat.heartbeat_time.ToDatetime(UTC)
            if beat.status == WorkerStatus.WORKER_STATUS_RUNNING and (
                (now - at).total_seconds() < HEARTBEAT_STALE_S
            ):
                live.add(beat.worker_identity)
            else:
                last_words[beat.worker_identity] = max(at, last_words.get(beat.worker_identity, at))
        polling = [p for p in pollers if _polled_alive(p, now, last_words)]
        found[f"workers_{kind}"] = "ok" if live or polling else f"error: no worker polls {queue}"
    return found


def _polled_alive(poller: PollerInfo, now: datetime, last_words: dict[str, datetime]) -> bool:
    """A poller seen lately, unless its worker had gone quiet before it polled (a worker's
    last poll starts at most one heartbeat after its last heartbeat)."""
    polled = poller.last_access_time.ToDatetime(UTC)
    if (now - polled).total_seconds() >= POLLER_FRESH_S:
        return False
    quiet = last_words.get(poller.identity)
    return quiet is None or polled > quiet + WORKER_HEARTBEAT
