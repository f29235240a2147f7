"""Deploying changed workflow code under load, by the documented procedure (README: Changing
workflow code): release N's workers run 6 jobs mid-render; release N+1 (a different build id,
with a workflow change that would break replay or reorder scenes) starts beside it and is made
current; N's runs stay pinned to N and finish there with the videos N makes, new jobs run N+1's
code, no history has a workflow task failure, and N is retired once it has drained.
Activities faked by name, real dev server."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from activities import messages as msg
    from t2m.config import Settings
    from t2m.vocabulary.job import SceneStatus, Stage, VideoResult
    from t2m.vocabulary.plan import SceneMedia, ScenePlan
    from t2m.vocabulary.request import VideoRequest
    from tests.fakes import Fakes
    from worker import WORKFLOW_RUNNER
    from workflows import activity_table as act
    from workflows.deployment import (
        _not_yet_movable,
        _pin,
        _pin_request,
        adopt_older_builds,
        deployment_config,
        pinned_runs,
        promote,
    )
    from workflows.regenerate import SceneRedos
    from workflows.scene import SceneSteps
    from workflows.state import RunState
    from workflows.steps import Authored
    from workflows.video import VideoWorkflow

OLD_JOBS = 6


class ChangedSceneSteps(SceneSteps):
    """Today's scene steps with one of four everyday changes, as release N+1 would ship them."""

    def __init__(self, job: RunState, change: str) -> None:
        super().__init__(job)
        self.change = change

    def set_stage(self, stage: Stage) -> None:
        if self.change == "stage constant" and stage == "rendering":
            stage = "generating_code"  # another constant behind the search attribute
        super().set_stage(stage)

    async def make(self, scene: ScenePlan, count: int) -> SceneMedia:
        if self.change == "added activity":  # one more activity at a scene's start
            await self.call(act.RETRIEVE_DOCS, msg.DocsRequest(queries=[scene.title]))
        if self.change == "scene order":  # the last scene starts first
            await workflow.sleep(0.2 * (count - scene.index))
        return await super().make(scene, count)

    async def author(
        self, scene: ScenePlan, count: int, st: SceneStatus, feedback: str = ""
    ) -> Authored:
        if self.change == "swapped awaits":  # narrate a first draft before the storyboard
            asked = msg.NarrateRequest(
                job_id=self.job.status.job_id,
                scene_index=scene.index,
                text=scene.narration,
                voice=self.job.req.voice,
            )
            await self.call(act.NARRATE_SCENE, asked)
        return await super().author(scene, count, st, feedback)


class ChangedVideoWorkflow(VideoWorkflow):
    """Today's VideoWorkflow making its scenes with `ChangedSceneSteps`."""

    change = ""

    @workflow.init
    def __init__(self, req: VideoRequest) -> None:
        super().__init__(req)
        self._steps = ChangedSceneSteps(self._job, self.change)
        self._redos = SceneRedos(self._job, self._steps)


@workflow.defn(name="VideoWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class StageConstantChanged(ChangedVideoWorkflow):
    change = "stage constant"

    @workflow.run
    async def run(self, req: VideoRequest) -> VideoResult:
        return await super().run(req)


@workflow.defn(name="VideoWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class ActivityAdded(ChangedVideoWorkflow):
    change = "added activity"

    @workflow.run
    async def run(self, req: VideoRequest) -> VideoResult:
        return await super().run(req)


@workflow.defn(name="VideoWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class AwaitsSwapped(ChangedVideoWorkflow):
    change = "swapped awaits"

    @workflow.run
    async def run(self, req: VideoRequest) -> VideoResult:
        return await super().run(req)


@workflow.defn(name="VideoWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class ScenesReordered(ChangedVideoWorkflow):
    change = "scene order"

    @workflow.run
    async def run(self, req: VideoRequest) -> VideoResult:
        return await super().run(req)


@workflow.defn(name="VideoWorkflow")
class UnversionedVideoWorkflow(VideoWorkflow):
    """Today's workflow as a release before Worker Versioning ran it."""

    @workflow.run
    async def run(self, req: VideoRequest) -> VideoResult:
        return await super().run(req)


RELEASES_N_PLUS_1 = {c.change: c for c in (StageConstantChanged, ActivityAdded, AwaitsSwapped,
                                           ScenesReordered)}  # fmt: skip


@contextlib.asynccontextmanager
async def release(
    client: Client, prefix: str, fakes: Fakes, workflow_class: type, build: WorkerDeploymentVersion
) -> AsyncIterator[None]:
    """One release's workers on the shared queues, in its own deployment version."""
    versioned = deployment_config(build)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(
                client,
                task_queue=f"{prefix}-video",
                workflows=[workflow_class],
                workflow_runner=WORKFLOW_RUNNER,
                deployment_config=versioned,
            )  # fmt: skip
        )
        for kind, acts in fakes.activities().items():
            await stack.enter_async_context(
                Worker(
                    client,
                    task_queue=f"{prefix}-{kind}",
                    activities=acts,
                    deployment_config=versioned,
                )  # fmt: skip
            )
        yield


async def start(client: Client, prefix: str, topic: str) -> WorkflowHandle[Any, VideoResult]:
    req = VideoRequest(topic=topic, model="fake/model")
    return await client.start_workflow(
        VideoWorkflow.run, req, id=f"video-{uuid.uuid4()}", task_queue=f"{prefix}-video"
    )


async def history_facts(handle: WorkflowHandle[Any, Any]) -> tuple[list[str], int]:
    """The activity types the run scheduled, and how many workflow tasks failed."""
    scheduled, failed = [], 0
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled.append(e.activity_task_scheduled_event_attributes.activity_type.name)
        failed += e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    return scheduled, failed


@pytest.mark.parametrize(
    "change", ["stage constant", "added activity", "swapped awaits", "scene order"]
)
async def test_a_release_with_changed_workflow_code_leaves_running_jobs_alone(
    client: Client, change: str
) -> None:
    prefix, deployment = f"rollout-{uuid.uuid4().hex[:8]}", f"rollout-{uuid.uuid4().hex[:8]}"
    n, n1 = WorkerDeploymentVersion(deployment, "N"), WorkerDeploymentVersion(deployment, "N+1")
    fakes = Fakes(
        render=lambda r: msg.RenderOutcome(ok=True, video_key=f"renders/{r.scene_index}.mp4"),
        render_delay_s=2.0,
    )
    async with contextlib.AsyncExitStack() as release_n1:
        async with release(client, prefix, fakes, VideoWorkflow, n):
            await promote(client, n)
            old = [await start(client, prefix, f"Old {i}") for i in range(OLD_JOBS)]
            while fakes.calls["render_scene"] < OLD_JOBS:  # every old job is mid-render
                await asyncio.sleep(0.1)
            # N+1 starts beside N and is made current: new runs go to it, N's stay pinned to N.
            await release_n1.enter_async_context(
                release(client, prefix, fakes, RELEASES_N_PLUS_1[change], n1)
            )
            await promote(client, n1)
            new = [await start(client, prefix, f"New {i}") for i in range(2)]
            results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in old)), 60)
            while await pinned_runs(client, n):  # N has drained: it is retired
                await asyncio.sleep(0.2)
        await asyncio.wait_for(asyncio.gather(*(h.result() for h in new)), 60)

    composed = {c.job_id: [m.video_key for m in c.scenes] for c in fakes.composed}
    for handle, result in zip(old, results, strict=True):
        scheduled, failed = await history_facts(handle)
        assert result.scenes == 2 and failed == 0
        assert composed[handle.id] == ["renders/0.mp4", "renders/1.mp4"]  # N's scenes, N's order
        assert scheduled.count("retrieve_docs") == 0 and scheduled.count("narrate_scene") == 2
        info = (await handle.describe()).raw_description.workflow_execution_info
        assert info.versioning_info.deployment_version.build_id == "N"
    for handle in new:
        scheduled, failed = await history_facts(handle)
        assert failed == 0 and composed[handle.id] == ["renders/0.mp4", "renders/1.mp4"]
        info = (await handle.describe()).raw_description.workflow_execution_info
        assert info.versioning_info.deployment_version.build_id == "N+1"
        if change == "added activity":
            assert scheduled.count("retrieve_docs") == 2  # N+1's code ran
        if change == "swapped awaits":
            assert scheduled.count("narrate_scene") == 4


async def test_a_single_host_upgraded_to_versioned_workers_adopts_the_runs_it_had(
    client: Client, settings: Settings
) -> None:
    """A run started before workers were versioned (an older t2m's data dir) is moved onto the
    first versioned build, where it finishes."""
    prefix, deployment = f"adopt-{uuid.uuid4().hex[:8]}", f"adopt-{uuid.uuid4().hex[:8]}"
    ours = settings.model_copy(
        update={"task_queue_prefix": prefix, "deployment_name": deployment, "build_id": "first"}
    )
    fakes = Fakes(render_delay_s=2.0)
    async with contextlib.AsyncExitStack() as unversioned:
        await unversioned.enter_async_context(
            Worker(client, task_queue=f"{prefix}-video", workflows=[UnversionedVideoWorkflow])
        )
        for kind, acts in fakes.activities().items():
            await unversioned.enter_async_context(
                Worker(client, task_queue=f"{prefix}-{kind}", activities=acts)
            )
        before = await start(client, prefix, "Before versioning")
        while fakes.calls["render_scene"] < 2:
            await asyncio.sleep(0.1)
    first = WorkerDeploymentVersion(deployment, "first")
    async with release(client, prefix, fakes, VideoWorkflow, first):
        await promote(client, first)
        assert await adopt_older_builds(client, ours, [VideoWorkflow]) == {before.id: "moved"}
        assert (await asyncio.wait_for(before.result(), 60)).scenes == 2


async def test_a_run_that_ends_before_it_is_moved_is_reported_not_raised(
    client: Client, settings: Settings
) -> None:
    """A run listed as running may end before it is moved (at a worker's start, the schedule's
    maintenance run did, and the worker exited on the server's refusal): moving it is skipped."""
    prefix, deployment = f"adopt-{uuid.uuid4().hex[:8]}", f"adopt-{uuid.uuid4().hex[:8]}"
    build = WorkerDeploymentVersion(deployment, "first")
    async with release(client, prefix, Fakes(), VideoWorkflow, build):
        await promote(client, build)
        ended = await start(client, prefix, "Ends first")
        await asyncio.wait_for(ended.result(), 60)
        request = _pin_request(client, ended.id, ended.result_run_id, build)
        assert await _pin(client, request) is False


def test_a_move_the_server_gave_up_on_is_asked_again_and_a_wrong_one_is_not() -> None:
    """Under load the server answered a move with CANCELLED "operation was canceled" and the
    adoption raised (a full-suite run): such refusals say nothing about the request."""
    assert _not_yet_movable(RPCError("operation was canceled", RPCStatusCode.CANCELLED, b""))
    assert _not_yet_movable(RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b""))
    assert _not_yet_movable(
        RPCError("version x is not present in task queue y", RPCStatusCode.FAILED_PRECONDITION, b"")
    )
    assert not _not_yet_movable(RPCError("already completed", RPCStatusCode.NOT_FOUND, b""))
    assert not _not_yet_movable(RPCError("bad", RPCStatusCode.INVALID_ARGUMENT, b""))


async def test_a_single_host_restarted_on_changed_code_adopts_the_runs_that_replay(
    client: Client, settings: Settings
) -> None:
    """`t2m up` restarted on new workflow code (a new build, the old one's workers gone): a run
    whose history replays on the new code is moved onto the new build and completes; one that
    does not replay stays pinned to its build and is reported, never failed."""
    prefix, deployment = f"adopt-{uuid.uuid4().hex[:8]}", f"adopt-{uuid.uuid4().hex[:8]}"
    ours = settings.model_copy(
        update={"task_queue_prefix": prefix, "deployment_name": deployment, "build_id": "new"}
    )
    old_build, new_build = (WorkerDeploymentVersion(deployment, b) for b in ("old", "new"))
    fakes = Fakes(render_delay_s=2.0)
    async with release(client, prefix, fakes, VideoWorkflow, old_build):
        await promote(client, old_build)
        jobs = [await start(client, prefix, f"Adopted {i}") for i in range(2)]
        while fakes.calls["render_scene"] < 2:
            await asyncio.sleep(0.1)
    # The old build's workers are gone. The new build (same code here) replays both runs.
    async with release(client, prefix, fakes, VideoWorkflow, new_build):
        await promote(client, new_build)
        moved = await adopt_older_builds(client, ours, [VideoWorkflow])
        assert moved == {h.id: "moved" for h in jobs}
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in jobs)), 60)
    assert [r.scenes for r in results] == [2, 2]

    stuck_build = WorkerDeploymentVersion(deployment, "stuck")
    async with release(client, prefix, fakes, VideoWorkflow, old_build):
        await promote(client, old_build)
        rendered = fakes.calls["render_scene"]
        held = await start(client, prefix, "Left alone")
        while fakes.calls["render_scene"] < rendered + 2:
            await asyncio.sleep(0.1)
    ours = ours.model_copy(update={"build_id": "stuck"})
    async with release(client, prefix, fakes, ActivityAdded, stuck_build):
        await promote(client, stuck_build)
        left = await adopt_older_builds(client, ours, [ActivityAdded])
    assert list(left) == [held.id] and left[held.id].startswith("left on its build")
    info = (await held.describe()).raw_description.workflow_execution_info
    assert info.versioning_info.deployment_version.build_id == "old"  # still pinned, not failed
    async with release(client, prefix, fakes, VideoWorkflow, old_build):  # its build returns
        assert (await asyncio.wait_for(held.result(), 60)).scenes == 2
