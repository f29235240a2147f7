"""The video workflow on a real Temporal server with a real worker, renders and narration."""

from __future__ import annotations

import asyncio
import os

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from t2m.catalog.db import JobStore
from t2m.config import Settings
from t2m.vocabulary.job import STAGES
from t2m.vocabulary.request import VideoRequest
from tests.helpers import runners_under
from tests.scripted import ScriptedLLM, plan_json, scene_code
from workflows.client import job_status, start_video
from workflows.search import SA_OWNER, SA_QUALITY, SA_STAGE, SA_TOPIC

BROKEN_RENDER = 'self.play(Create(Circle(radius="big")))'


def request(**overrides) -> VideoRequest:
    fields = {"topic": "Circles", "model": "scripted/test", "quality": "low", "owner": "ada"}
    return VideoRequest(**(fields | overrides))


async def wait_for(handle, predicate, timeout: float = 60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await job_status(handle)
        if predicate(status):
            return status
        assert asyncio.get_running_loop().time() < deadline, f"timed out; last status {status}"
        await asyncio.sleep(0.2)


async def test_code_errors_reach_the_fixer_and_fixed_code_renders(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None, jobs: JobStore
) -> None:
    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("Broken render", "Rejected import", "Fine")
        if task == "write_scene_code":
            code = scene_code(
                data["class_name"], BROKEN_RENDER if data["scene"]["index"] == 0 else None
            )
            return (
                code.replace("from manim", "import os\nfrom manim")
                if data["scene"]["index"] == 1
                else code
            )
        if task == "fix_scene_code":
            return scene_code(data["class_name"], "self.play(FadeIn(Square()))")
        return None

    scripted.handler = handler
    handle = await start_video(client, settings, request())
    result = await handle.result()

    fixes = {d["scene"]["index"]: d for d, _ in scripted.prompts_for("fix_scene_code")}
    assert set(fixes) == {0, 1}
    assert "ufunc 'multiply'" in fixes[0]["error"] and BROKEN_RENDER in fixes[0]["error"]
    assert fixes[0]["code"].count('radius="big"') == 1  # the fixer sees the failing code
    assert "Code rejected by the static check" in fixes[1]["error"]
    assert "import of 'os' is not allowed" in fixes[1]["error"]

    status = await job_status(handle)
    assert status.status == "completed" and status.percentage == 100
    assert status.current_stage == "completed"
    assert status.stages_completed == list(STAGES[:-1])
    assert [(s.state, s.attempts) for s in status.scenes] == [("done", 2), ("done", 2), ("done", 1)]
    assert all(s.error is None for s in status.scenes)
    assert result.scenes == 3 and result.artifacts.thumbnail_key

    sa = (await handle.describe()).typed_search_attributes
    assert sa.get(SA_TOPIC) == "Circles" and sa.get(SA_OWNER) == "ada"
    assert sa.get(SA_QUALITY) == "low" and sa.get(SA_STAGE) == "completed"

    row = await jobs.get(handle.id)  # the catalog row, written by the record_job activity
    assert row is not None and row.owner == "ada" and row.status == "completed"
    assert row.request.topic == "Circles" and row.completed_at is not None
    assert row.artifacts == result.artifacts
    assert row.checkpoint is not None and sorted(row.checkpoint.scenes) == [0, 1, 2]
    assert row.progress is not None and row.progress.percentage == 100


async def test_a_scene_that_never_renders_fails_the_job_naming_it(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None, jobs: JobStore
) -> None:
    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("Opening", "Hopeless", "Closing")
        if task in ("write_scene_code", "fix_scene_code"):
            broken = data["scene"]["index"] == 1
            return scene_code(data["class_name"], BROKEN_RENDER if broken else "self.wait(0.5)")
        return None

    scripted.handler = handler
    handle = await start_video(client, settings, request(max_fix_attempts=2))
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    status = await job_status(handle)
    assert status.status == "failed"
    assert "scene 2 ('Hopeless') did not render after 2 attempts" in status.error
    assert [s.state for s in status.scenes] == ["done", "failed", "done"]
    assert len(scripted.prompts_for("fix_scene_code")) == 1  # bounded: 2 renders, 1 fix
    sa = (await handle.describe()).typed_search_attributes
    assert sa.get(SA_STAGE) == "failed"
    row = await jobs.get(handle.id)
    assert row.status == "failed" and "scene 2 ('Hopeless')" in row.error
    assert sorted(row.checkpoint.scenes) == [0, 2]  # what a retry can reuse


async def test_cancel_during_render_kills_it_and_ends_cancelled(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None, jobs: JobStore
) -> None:
    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("Long", "Longer", "Longest")
        if task == "write_scene_code":
            return scene_code(data["class_name"], "self.wait(900)")
        return None

    scripted.handler = handler
    handle = await start_video(client, settings, request())
    await wait_for(handle, lambda s: any(sc.state == "rendering" for sc in s.scenes))
    await asyncio.sleep(2)  # the sandboxed process is up
    assert _render_processes()
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    status = await job_status(handle)
    assert status.status == "cancelled"
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert _render_processes() == []
    assert (await jobs.get(handle.id)).status == "cancelled"


async def test_an_unusable_model_fails_fast_with_a_clear_message(
    client: Client, settings: Settings, worker: None
) -> None:
    handle = await start_video(client, settings, request(model="nosuchprovider/model"))
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), timeout=30)
    status = await job_status(handle)
    assert status.status == "failed" and "nosuchprovider/model" in status.error


def _render_processes() -> list[int]:
    """This test process's jailed renders (the in-process worker's), not those of tests beside it."""
    return [pid for pid, start in runners_under(os.getpid()).items() if start is not None]


PIPELINE = {"plan_video", "storyboard_scene", "narrate_scene", "write_scene_code", "render_scene"}


async def activity_types(handle) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        async for e in handle.fetch_history_events()
        if e.HasField("activity_task_scheduled_event_attributes")
    ]


async def test_an_identical_request_reuses_the_finished_video_and_force_does_not(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None, jobs: JobStore
) -> None:
    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("One", "Two", "Three", duration=1.0)
        if task == "write_scene_code":
            return scene_code(data["class_name"], "self.play(FadeIn(Square()), run_time=0.5)")
        return None

    scripted.handler = handler
    req = request(topic=f"Reuse {settings.task_queue_prefix}", reuse=True)
    first = await (await start_video(client, settings, req)).result()

    again = await start_video(client, settings, req.model_copy(update={"topic": f"  {req.topic} "}))
    second = await again.result()
    status = await job_status(again)
    assert status.reused_from == first.job_id and second.scenes == 3
    assert second.artifacts.video_key == f"jobs/{again.id}/video.mp4"
    assert second.artifacts.duration_s == first.artifacts.duration_s
    assert not PIPELINE & set(await activity_types(again))  # nothing made again
    row = await jobs.get(again.id)
    assert row is not None and row.status == "completed" and row.artifacts == second.artifacts

    forced = await start_video(client, settings, req.model_copy(update={"reuse": False}))
    await forced.result()
    assert (await job_status(forced)).reused_from is None
    assert set(await activity_types(forced)) >= PIPELINE
