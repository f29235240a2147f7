"""Activities heartbeat while they wait, against a real Temporal server and a real (slow, loopback)
OpenAI-compatible provider reached through litellm: a model call outlives a heartbeat timeout
shorter than the call, and cancelling the caller cancels the in-flight request (the provider sees
its connection close).

The activities are called from a small workflow defined here, with the heartbeat timeout given
explicitly, so the activity side is tested on its own; the worker is throttled as worker.py's are
(`MAX_HEARTBEAT_THROTTLE`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeout
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.catalog import CatalogActivities
from activities.eval import EvalActivities
from activities.heartbeat import HEARTBEAT_EVERY_S, MAX_HEARTBEAT_THROTTLE, heartbeats
from activities.llm import LLMActivities
from activities.media import MediaActivities
from activities.messages import DocQueriesRequest, DocQueriesResult
from t2m.authoring import steps as authoring
from t2m.authoring.llm import ModelClient
from t2m.catalog.storage import LocalStorage
from t2m.config import Settings
from t2m.vocabulary.request import VideoRequest
from t2m.vocabulary.usage import Usage
from tests.slow_provider import MODEL, slow_provider
from workflows.client import start_video
from workflows.video import VideoWorkflow


class Call(BaseModel):
    activity: str
    heartbeat_s: float
    wait_for_cancel: bool = False


@workflow.defn(sandboxed=False)
class CallActivity:
    """Calls one activity by name with the given heartbeat timeout, once (no retries)."""

    @workflow.run
    async def run(self, call: Call) -> DocQueriesResult:
        cancellation = (
            workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
            if call.wait_for_cancel
            else workflow.ActivityCancellationType.TRY_CANCEL
        )
        return await workflow.execute_activity(
            call.activity,
            request(),
            result_type=DocQueriesResult,
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=call.heartbeat_s),
            retry_policy=RetryPolicy(maximum_attempts=1),
            cancellation_type=cancellation,
        )


def request() -> DocQueriesRequest:
    return DocQueriesRequest(
        model=MODEL, topic="Circles", scene_index=0, code="x", error="NameError: r"
    )


@activity.defn(name="doc_queries_without_heartbeats")
async def doc_queries_without_heartbeats(req: DocQueriesRequest) -> DocQueriesResult:
    """The same model call, not heartbeating: the control for the heartbeat timeout."""
    queries, usage = await authoring.doc_queries_for_error(
        ModelClient(None), req.model, req.topic, req.code, req.error
    )
    return DocQueriesResult(queries=queries, usage=usage)


@activity.defn(name="blocking_in_a_thread")
@heartbeats
async def blocking_in_a_thread(req: DocQueriesRequest) -> DocQueriesResult:
    await asyncio.to_thread(time.sleep, 7)  # blocking work: heartbeats come from the event loop
    return DocQueriesResult(queries=["slept"], usage=Usage())


@contextlib.asynccontextmanager
async def worker(client: Client, tmp_path: Path) -> AsyncIterator[str]:
    queue = f"heartbeats-{uuid.uuid4().hex[:8]}"
    models = LLMActivities(ModelClient(None), LocalStorage(tmp_path / "storage"), tmp_path)
    async with Worker(
        client,
        task_queue=queue,
        workflows=[CallActivity],
        activities=[*models.all(), doc_queries_without_heartbeats, blocking_in_a_thread],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_heartbeat_throttle_interval=MAX_HEARTBEAT_THROTTLE,  # as worker.py's workers
    ):
        yield queue


async def test_a_model_call_heartbeats_while_it_waits_for_the_provider(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with slow_provider(8.0, monkeypatch) as provider, worker(client, tmp_path) as queue:
        started = time.monotonic()
        result = await client.execute_workflow(
            CallActivity.run,
            Call(activity="doc_queries_for_error", heartbeat_s=3),
            id=f"hb-{uuid.uuid4()}",
            task_queue=queue,
        )
        assert result.queries == ["Circle radius"] and provider.answered == 1
        assert time.monotonic() - started >= 8.0, "the provider held the call 8 s"

        thread = await client.execute_workflow(
            CallActivity.run,
            Call(activity="blocking_in_a_thread", heartbeat_s=3),
            id=f"hb-{uuid.uuid4()}",
            task_queue=queue,
        )
        assert thread.queries == ["slept"]

        with pytest.raises(WorkflowFailureError) as failed:  # the control: no heartbeats
            await client.execute_workflow(
                CallActivity.run,
                Call(activity="doc_queries_without_heartbeats", heartbeat_s=3),
                id=f"hb-{uuid.uuid4()}",
                task_queue=queue,
            )
        assert isinstance(failed.value.cause, ActivityError)
        timeout = failed.value.cause.cause
        assert isinstance(timeout, ActivityTimeout) and timeout.type == TimeoutType.HEARTBEAT


async def test_the_first_heartbeat_comes_after_the_interval_not_at_the_start(
    client: Client, tmp_path: Path
) -> None:
    """A beat at the start is an RPC for every activity, most of which end before a second one."""
    async with worker(client, tmp_path) as queue:
        handle = await client.start_workflow(
            CallActivity.run,
            Call(activity="blocking_in_a_thread", heartbeat_s=10),
            id=f"hb-{uuid.uuid4()}",
            task_queue=queue,
        )
        first_beat_s = None
        while first_beat_s is None and not (desc := await handle.describe()).close_time:
            for p in desc.raw_description.pending_activities:
                if p.HasField("last_started_time") and p.HasField("last_heartbeat_time"):
                    started = p.last_started_time.ToDatetime()
                    first_beat_s = (p.last_heartbeat_time.ToDatetime() - started).total_seconds()
            await asyncio.sleep(0.1)
        assert first_beat_s is not None and first_beat_s >= HEARTBEAT_EVERY_S - 0.2, first_beat_s
        assert (await handle.result()).queries == ["slept"]


async def test_cancelling_the_caller_cancels_the_in_flight_model_request(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with slow_provider(120.0, monkeypatch) as provider, worker(client, tmp_path) as queue:
        handle = await client.start_workflow(
            CallActivity.run,
            Call(activity="doc_queries_for_error", heartbeat_s=10, wait_for_cancel=True),
            id=f"hb-{uuid.uuid4()}",
            task_queue=queue,
        )
        await asyncio.wait_for(provider.received.wait(), 30)
        await asyncio.sleep(1.0)  # the request is in flight
        cancelled_at = time.monotonic()
        await handle.cancel()
        await asyncio.wait_for(provider.closed.wait(), 15)
        assert provider.closed_at is not None
        latency = provider.closed_at - cancelled_at
        assert latency < 3.0, f"the connection closed {latency:.1f} s after the cancel"
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        assert isinstance(failed.value.cause, CancelledError)
        events = [e.event_type async for e in handle.fetch_history_events()]
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED in events, "the activity saw the cancel"
        assert provider.answered == 0
        print(f"connection closed {latency:.2f} s after the cancel")


@pytest.mark.parametrize("cls", [LLMActivities, MediaActivities, EvalActivities, CatalogActivities])
def test_every_activity_of_the_workers_heartbeats(cls: type) -> None:
    """A new activity must heartbeat too (`@heartbeats` under `@activity.defn`), or a heartbeat
    timeout would fail it while it waits."""
    defined = {
        name: fn
        for name, fn in vars(cls).items()
        if getattr(fn, "__temporal_activity_definition", None) is not None
    }
    assert defined
    assert [n for n, fn in defined.items() if getattr(fn, "__wrapped__", None) is None] == []


async def test_cancelling_a_job_cancels_its_model_call_in_flight(
    client: Client, settings: Settings, worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real workflow and worker: a job planning on a slow provider is cancelled; the provider
    sees the request's connection close within seconds (the heartbeat carries the cancel), and
    the job ends cancelled instead of waiting for the call."""
    async with slow_provider(120.0, monkeypatch) as provider:
        req = VideoRequest(topic="Circles", model=MODEL, voice="none")
        handle = await start_video(client, settings, req)
        await asyncio.wait_for(provider.received.wait(), 30)
        await asyncio.sleep(1.0)  # the call is in flight
        cancelled_at = time.monotonic()
        await handle.cancel()
        await asyncio.wait_for(provider.closed.wait(), 10)
        assert provider.closed_at is not None and provider.closed_at - cancelled_at < 5
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        assert (await handle.query(VideoWorkflow.status)).status == "cancelled"
        assert provider.answered == 0
