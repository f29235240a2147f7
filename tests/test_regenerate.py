"""Regenerate one scene: the `regenerate_scene` Workflow Update on a running job (activities faked
by name, real dev server), and the REST endpoint on a completed job (real pipeline, low quality):
only that scene's activities run again, counted from the workflow history."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError

from activities.messages import RenderOutcome
from t2m.models import VideoRequest
from tests.fakes import Fakes, running
from workflows.video import VideoWorkflow

SCENE_ACTIVITIES = {
    "storyboard_scene", "narrate_scene", "write_scene_code", "fix_scene_code", "render_scene",
}  # fmt: skip


async def scheduled(client: Client, handle: WorkflowHandle[Any, Any]) -> Counter[tuple[str, Any]]:
    """(activity, scene index or None) → how often it was scheduled, from the run's history."""
    counts: Counter[tuple[str, Any]] = Counter()
    async for event in handle.fetch_history_events():
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        attrs = event.activity_task_scheduled_event_attributes
        [arg] = await client.data_converter.decode(attrs.input.payloads)
        scene = None
        if attrs.activity_type.name in SCENE_ACTIVITIES:
            scene = arg["scene"]["index"] if "scene" in arg else arg["scene_index"]
        counts[attrs.activity_type.name, scene] += 1
    return counts


async def wait_planned(handle: WorkflowHandle[Any, Any]) -> None:
    for _ in range(200):
        if (await handle.query(VideoWorkflow.status)).scenes:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the job never planned its scenes")


async def reason(update: Any) -> str:
    try:
        await update
    except WorkflowUpdateFailedError as e:
        assert isinstance(e.cause, ApplicationError)
        return e.cause.message
    raise AssertionError("the update was accepted")


async def test_an_update_redoes_one_running_scene_and_the_video_uses_it(client: Client) -> None:
    fakes = Fakes(
        render=lambda r: RenderOutcome(ok=True, video_key=f"renders/{r.scene_index}-{r.code}.mp4"),
        render_delay_s=1.0,
    )
    req = VideoRequest(topic="Circles", model="fake/model")
    async with running(client, fakes) as queue:
        handle = await client.start_workflow(
            VideoWorkflow.run, req, id=f"video-{uuid.uuid4()}", task_queue=queue
        )
        await wait_planned(handle)
        no_such = handle.execute_update(VideoWorkflow.regenerate_scene, args=[7, "x"])
        assert (
            await reason(no_such) == "scene index 7 does not exist; this video has 2 scenes (0-1)"
        )
        accepted = await handle.start_update(
            VideoWorkflow.regenerate_scene,
            args=[1, "make the circle bigger"],
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )
        again = handle.execute_update(VideoWorkflow.regenerate_scene, args=[1, "no"])
        assert "already being regenerated" in await reason(again)
        redone = await accepted.result()
        assert redone.index == 1 and redone.state == "done" and redone.attempts == 1
        result = await handle.result()
        status = await handle.query(VideoWorkflow.status)

    assert result.scenes == 2 and [s.state for s in status.scenes] == ["done", "done"]
    counts = await scheduled(client, handle)
    for name in ("storyboard_scene", "narrate_scene", "write_scene_code", "render_scene"):
        assert (counts[name, 0], counts[name, 1]) == (1, 2), name
    assert counts["plan_video", None] == counts["compose_video", None] == 1
    [composed] = fakes.composed
    assert [m.video_key for m in composed.scenes] == [
        "renders/0-v1.mp4",
        "renders/1-v1 make the circle bigger.mp4",
    ]
    assert composed.version == 1 and result.artifacts.version == 1
