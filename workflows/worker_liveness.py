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

from t2m.config import POLLER_FRESH_S, Settings

WORKER_HEARTBEAT = timedelta(seconds=5)
"""How often a t2m worker tells the server it is alive (its runtime's worker heartbeat)."""
STALE_BEATS = 3
"""A worker whose last heartbeat is older than this many of its intervals is gone: a killed
worker's just stop."""
HEARTBEAT_STALE_S = STALE_BEATS * WORKER_HEARTBEAT.total_seconds()
"""How soon a t2m worker's death shows."""


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

    A worker is live while its heartbeats (every `WORKER_HEARTBEAT` for t2m's) are fresh and
    it is running (`judge_heartbeats`); a poller counts unless its worker's heartbeats stopped
    (killed) or said it was stopping before that poll. So a killed worker is seen gone within
    `HEARTBEAT_STALE_S` (its pollers stayed listed for `POLLER_FRESH_S`), a worker busy in
    every slot (it does not poll) still counts, and a worker that has not yet sent a heartbeat
    counts by its polls, even under the identity of a dead one (a restarted container's
    `1@pod`)."""
    now = datetime.now(UTC)
    beats = await worker_heartbeats(client)
    found: dict[str, str] = {}
    for kind, pollers in (await queue_pollers(client, settings)).items():
        queue = settings.queue(kind)
        live, quiet = judge_heartbeats([b for b in beats if b.task_queue == queue], now)
        polling = [p for p in pollers if _polled_alive(p, now, quiet)]
        found[f"workers_{kind}"] = "ok" if live or polling else f"error: no worker polls {queue}"
    return found


def judge_heartbeats(
    beats: list[WorkerHeartbeat], now: datetime
) -> tuple[set[str], dict[str, datetime]]:
    """The identities of the live workers among one queue's `beats`, and for each other one when
    it went quiet (its latest heartbeat plus one of its intervals: a worker polls at most that
    long after its last beat). Each worker is judged by its own interval (the one before its
    latest beat, at least `WORKER_HEARTBEAT`): a worker on another runtime or release beats
    every 60 s, the SDK's default. A first beat tells no interval and is judged by t2m's, so a
    t2m worker killed soon after its start is seen gone as soon. The times are the workers'
    clocks against this host's: hosts keep their clocks in sync (NTP), within a few seconds."""
    live: set[str] = set()
    quiet: dict[str, datetime] = {}
    for beat in beats:
        at = beat.heartbeat_time.ToDatetime(UTC)
        interval = max(beat.elapsed_since_last_heartbeat.ToTimedelta(), WORKER_HEARTBEAT)
        running = beat.status == WorkerStatus.WORKER_STATUS_RUNNING
        if running and now - at < STALE_BEATS * interval:
            live.add(beat.worker_identity)
        else:
            gone = at + interval
            quiet[beat.worker_identity] = max(gone, quiet.get(beat.worker_identity, gone))
    return live, quiet


def _polled_alive(poller: PollerInfo, now: datetime, quiet: dict[str, datetime]) -> bool:
    """A poller seen lately, unless it polled before its worker went quiet."""
    polled = poller.last_access_time.ToDatetime(UTC)
    if (now - polled).total_seconds() >= POLLER_FRESH_S:
        return False
    gone = quiet.get(poller.identity)
    return gone is None or polled > gone
