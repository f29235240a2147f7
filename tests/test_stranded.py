"""A bug in workflow code holds a job instead of failing it: the workflow task fails (and is
retried), /health, the metrics and the job's status say so, and a fixed worker completes the job.
Activities faked by name, real dev server."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import aclosing

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from t2m.config import Settings
    from t2m.vocabulary.job import JobStatus, VideoResult
    from t2m.vocabulary.plan import Artifacts, SceneMedia
    from t2m.vocabulary.request import VideoRequest
    from tests.fakes import Fakes, running
    from tests.helpers import asgi_client
    from workflows.client import held_jobs, history_growth, job_status, job_status_since
    from workflows.video import VideoWorkflow


def queued(job_id: str) -> JobStatus:
    """What a caller knew before: the job queued."""
    return JobStatus(job_id=job_id, status="queued")


@workflow.defn(name="VideoWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class BuggyVideoWorkflow(VideoWorkflow):
    """Today's workflow with a bug in one step: composing looks up a key that is not there."""

    @workflow.run
    async def run(self, req: VideoRequest) -> VideoResult:
        return await super().run(req)

    async def _assemble(self, req: VideoRequest, media: list[SceneMedia]) -> Artifacts:
        return {}["the missing key"]  # type: ignore[index]


async def test_a_bug_in_workflow_code_holds_the_job_until_a_fix_completes_it(
    client, settings: Settings
) -> None:
    fakes = Fakes()
    prefix = f"stranded-{uuid.uuid4().hex[:8]}"
    ours = settings.model_copy(update={"task_queue_prefix": prefix, "dev_user": None})
    req = VideoRequest(topic="Circles", model="fake/model")
    async with running(client, fakes, workflows=(BuggyVideoWorkflow,), prefix=prefix) as queue:
        handle = await client.start_workflow(
            VideoWorkflow.run, req, id=f"video-{uuid.uuid4()}", task_queue=queue
        )
        started = time.monotonic()
        while (status := await job_status(handle)).held is None:
            assert time.monotonic() - started < 60, status
            await asyncio.sleep(0.5)
        assert status.status == "running" and "held by a worker problem" in status.held
        # The API's paths say so too: the describe adds `held` to the status in the run's memo,
        # and its watcher gives no status for a history whose last workflow task failed.
        described, seen = await job_status_since(client, handle.id, queued(handle.id), "")
        assert seen and described.held == status.held and described.status == "running"
        run = (await handle.describe()).run_id
        async with aclosing(history_growth(client, handle.id, f"{run}/1")) as growth:
            assert (await anext(growth))[1] is None
        while (await held_jobs(client, ours))[0] == 0:  # the server marks it after 2 failures
            assert time.monotonic() - started < 60
            await asyncio.sleep(0.5)
        async with asgi_client(ours) as http:
            health = (await http.get("/health")).json()
            metrics = (await http.get("/metrics")).text
        assert handle.id in health["workflow_tasks"] and health["status"] == "degraded"
        assert "t2m_jobs_held 1.0" in metrics
    failures = [
        e
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]
    assert (
        failures
        and "the missing key" in failures[0].workflow_task_failed_event_attributes.failure.message
    )
    assert (await handle.describe()).status is not None  # still running, not failed

    async with running(client, fakes, prefix=prefix):  # the fix is deployed
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.scenes == 2 and result.artifacts.video_key == "v.mp4"
    assert [r.status for r in fakes.records] == ["running", "completed"]
