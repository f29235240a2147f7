"""Regenerate one scene: the `regenerate_scene` Workflow Update on a running job (activities faked
by name, real dev server), and the REST endpoint on a completed job (real pipeline, low quality):
only that scene's activities run again, counted from the workflow history."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError

from activities.messages import RenderOutcome
from api.main import create_app
from api.routes import regenerate
from t2m.catalog.db import JobStore
from t2m.config import Settings
from t2m.vocabulary.request import VideoRequest
from tests.fakes import Fakes, running
from tests.helpers import serve
from tests.media_checks import frame_at
from tests.scripted import ScriptedLLM, plan_json, scene_code
from tests.test_api import GENERATE, body, wait_status
from tests.test_cli_jobs import env_for, t2m_json
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
        assert (await accepted.result()).index == 1  # answered at acceptance
        result = await handle.result()
        status = await handle.query(VideoWorkflow.status)

    assert result.scenes == 2 and [s.state for s in status.scenes] == ["done", "done"]
    assert status.scenes[1].attempts == 1
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
    assert not fakes.records[-1].reusable  # not offered to identical requests


async def test_a_failed_redo_leaves_the_scene_exactly_as_it_was(client: Client) -> None:
    """The redo's renders fail (its code carries the feedback): the video keeps scene 1's first
    picture and narration, and the job completes."""
    fakes = Fakes(
        render=lambda r: RenderOutcome(
            ok="worse" not in r.code, video_key=f"renders/{r.scene_index}-{r.code}.mp4"
        ),
        render_delay_s=0.5,
    )
    req = VideoRequest(topic="Circles", model="fake/model", max_fix_attempts=1)
    async with running(client, fakes) as queue:
        handle = await client.start_workflow(
            VideoWorkflow.run, req, id=f"video-{uuid.uuid4()}", task_queue=queue
        )
        await wait_planned(handle)
        await handle.execute_update(VideoWorkflow.regenerate_scene, args=[1, "make it worse"])
        result = await handle.result()
        status = await handle.query(VideoWorkflow.status)
    assert result.scenes == 2 and [s.state for s in status.scenes] == ["done", "done"]
    [composed] = fakes.composed
    assert [m.video_key for m in composed.scenes] == ["renders/0-v1.mp4", "renders/1-v1.mp4"]
    counts = await scheduled(client, handle)
    assert counts["render_scene", 1] == 2  # the first make and the failed redo
    assert fakes.records[-1].reusable  # nothing was redone: still what the request makes


async def test_a_job_ending_in_failure_takes_no_redo_while_it_records_that(
    client: Client,
) -> None:
    """Every render fails: the job fails, and while its outcome is written (the catalog is slow
    here; a database outage makes it minutes) it still read "running", so a redo was accepted,
    answered "regenerating" and paid for on a job that was ending."""
    fakes = Fakes(render=lambda r: RenderOutcome(ok=False, error="boom"), catalog_delay_s=4.0)
    req = VideoRequest(topic="Circles", model="fake/model", max_fix_attempts=1)
    async with running(client, fakes) as queue:
        handle = await client.start_workflow(
            VideoWorkflow.run, req, id=f"video-{uuid.uuid4()}", task_queue=queue
        )
        for _ in range(400):
            status = await handle.query(VideoWorkflow.status)
            if any(s.state == "failed" for s in status.scenes):
                break
            await asyncio.sleep(0.02)
        assert status.status == "running", status.status  # the outcome is still being recorded
        late = handle.execute_update(VideoWorkflow.regenerate_scene, args=[0, "again"])
        assert "the job's scenes are final" in await reason(late)
        renders = fakes.calls["render_scene"]
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert fakes.calls["render_scene"] == renders  # no redo was made


async def test_a_run_refuses_redos_past_its_cap(client: Client) -> None:
    """Scene 0's first render is held while scene 1 is redone up to the cap: the next is a 409
    reason, and the job then completes with every accepted redo made."""
    first_render_of_scene_0 = asyncio.Event()

    async def render(r: Any) -> RenderOutcome:
        if r.scene_index == 0:
            await first_render_of_scene_0.wait()
        return RenderOutcome(ok=True, video_key=f"renders/{r.scene_index}-{r.code}.mp4")

    fakes = Fakes(render=render)
    req = VideoRequest(topic="Circles", model="fake/model")
    async with running(client, fakes) as queue:
        handle = await client.start_workflow(
            VideoWorkflow.run, req, id=f"video-{uuid.uuid4()}", task_queue=queue
        )
        await wait_planned(handle)
        for _ in range(regenerate_cap()):
            assert await when_free(handle, 1) == "accepted"
        assert "already redone scenes 10 times" in await when_free(handle, 1)
        first_render_of_scene_0.set()
        await handle.result()
    counts = await scheduled(client, handle)
    assert counts["render_scene", 1] == 1 + regenerate_cap()


async def test_the_cap_counts_every_redo_of_the_run_while_earlier_ones_are_awaited(
    client: Client,
) -> None:
    """Once the scenes are made the run awaits the redos accepted so far: those accepted
    meanwhile count towards the same cap (they used to start a fresh count of 10 each time)."""
    scene_0_made, redo_of_1_ends = asyncio.Event(), asyncio.Event()

    async def render(r: Any) -> RenderOutcome:
        if "hold" in r.code:  # scene 1's redo stays in flight
            await redo_of_1_ends.wait()
        elif r.scene_index == 0 and r.code == "v1":
            await scene_0_made.wait()
        return RenderOutcome(ok=True, video_key=f"renders/{r.scene_index}-{r.code}.mp4")

    req = VideoRequest(topic="Circles", model="fake/model")
    async with running(client, Fakes(render=render)) as queue:
        handle = await client.start_workflow(
            VideoWorkflow.run, req, id=f"video-{uuid.uuid4()}", task_queue=queue
        )
        await wait_planned(handle)
        await handle.execute_update(VideoWorkflow.regenerate_scene, args=[1, "hold"])
        await handle.execute_update(VideoWorkflow.regenerate_scene, args=[0, "again"])
        scene_0_made.set()  # the scenes are made: the run awaits these two redos
        for _ in range(regenerate_cap() - 2):
            assert await when_free(handle, 0) == "accepted"
        assert "already redone scenes 10 times" in await when_free(handle, 0)
        redo_of_1_ends.set()
        await handle.result()
    counts = await scheduled(client, handle)
    assert counts["render_scene", 0] == regenerate_cap()
    assert counts["render_scene", 1] == 2


async def when_free(handle: WorkflowHandle[Any, Any], index: int) -> str:
    """Ask for a redo of scene `index` until it is not busy being redone: "accepted" or why not."""
    while True:
        try:
            await handle.execute_update(VideoWorkflow.regenerate_scene, args=[index, "again"])
            return "accepted"
        except WorkflowUpdateFailedError as e:
            assert isinstance(e.cause, ApplicationError)
            if e.cause.type != "SceneBusy":
                return e.cause.message
        await asyncio.sleep(0.1)


def regenerate_cap() -> int:
    from workflows.regenerate import MAX_REDOS

    return MAX_REDOS


def packets(path: Any) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(video=0) if p.size]


async def test_rest_regenerates_a_completed_jobs_scene_as_a_new_version(
    api: httpx.AsyncClient,
    keys: dict,
    scripted: ScriptedLLM,
    worker: None,
    client: Client,
    jobs: JobStore,
    tmp_path: Path,
    api_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("One", "Two", "Three", duration=2.0)
        if task == "write_scene_code":  # the feedback asks for a red square instead of a circle
            shape = "Square(color=RED, fill_opacity=1)" if data.get("feedback") else "Circle()"
            return scene_code(data["class_name"], f"self.play(Create({shape}))")
        return None

    scripted.handler = handler
    alice, bob = keys["alice"], keys["bob"]
    job = (await api.post(GENERATE, json=body(), headers=alice)).json()["job_id"]
    await wait_status(api, job, alice, {"completed"})
    first = (await api.get(f"/api/v1/videos/jobs/{job}/video-url", headers=alice)).json()
    assert first["version"] == 1 and first["previous"] is None
    v1 = (await api.get(first["download_url"])).content

    regenerate_url = f"/api/v1/jobs/{job}/scenes/1/regenerate"
    feedback = {"feedback": "Show a red square instead"}
    assert (await api.post(regenerate_url, json=feedback, headers=bob)).status_code == 404
    bad = await api.post(f"/api/v1/jobs/{job}/scenes/7/regenerate", json=feedback, headers=alice)
    assert bad.status_code == 422 and bad.json()["detail"] == [
        {
            "loc": ["path", "index"],
            "msg": "scene index 7 does not exist; this video has 3 scenes (0-2)",
            "type": "value_error",
        }
    ]
    empty = await api.post(regenerate_url, json={"feedback": " "}, headers=alice)
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body", "feedback"]
    async with serve(create_app(api_settings)) as url:  # the CLI over the REST API
        env = env_for(api_settings, tmp_path, url, alice["Authorization"].split()[1])
        args = ("jobs", "regenerate", job, "--feedback", feedback["feedback"])
        code, answer, err = await t2m_json(env, *args[:3], "5", *args[3:])
        assert code == 2 and "scene index 5 does not exist" in err, err
        code, answer, _ = await t2m_json(env, *args[:3], "1", *args[3:])
    assert code == 0 and answer == {"job_id": job, "status": "queued", "index": 1, "version": 2}
    # At once, while version 2 is being made: another scene is a 409 naming it, no such scene a 422.
    racing = await api.post(f"/api/v1/jobs/{job}/scenes/2/regenerate", json=feedback, headers=alice)
    assert racing.status_code == 409 and "version 2 of" in racing.text, racing.text
    nine = await api.post(f"/api/v1/jobs/{job}/scenes/9/regenerate", json=feedback, headers=alice)
    assert nine.status_code == 422 and "this video has 3 scenes" in nine.text, nine.text
    while_making = await api.get(f"/api/v1/videos/jobs/{job}/video-url", headers=alice)
    if while_making.json()["status"] != "completed":  # the current version plays meanwhile
        assert while_making.json()["version"] == 1
        assert (await api.get(while_making.json()["download_url"])).content == v1
    done = await wait_status(api, job, alice, {"completed"})
    assert done["version"] == 2 and done["previous_version"] == 1

    urls = (await api.get(f"/api/v1/videos/jobs/{job}/video-url", headers=alice)).json()
    assert urls["version"] == 2 and urls["previous"]["version"] == 1
    assert (await api.get(urls["previous"]["download_url"])).content == v1  # still downloadable
    old = await api.get(f"/api/v1/videos/jobs/{job}/download?version=1", headers=alice)
    assert old.content == v1
    assert (
        await api.get(f"/api/v1/videos/jobs/{job}/stream?version=3", headers=alice)
    ).status_code == 404
    (tmp_path / "v1.mp4").write_bytes(v1)
    (tmp_path / "v2.mp4").write_bytes((await api.get(urls["download_url"])).content)

    # Only scene 1 was made again; the other scenes' renders are reused, none paid for again.
    handle = client.get_workflow_handle(job)
    counts = await scheduled(client, handle)
    details = await (await handle.describe()).static_details() or ""
    assert "version 2: scene 2 made again with the feedback 'Show a red square instead'" in details
    scene_work = {k: n for k, n in counts.items() if k[0] in SCENE_ACTIVITIES}
    assert set(scene_work) <= {(name, 1) for name in SCENE_ACTIVITIES}, scene_work
    assert scene_work[("render_scene", 1)] == 1 and counts["plan_video", None] == 0

    # The new video differs from the old one in scene 1's span only: packets are copied.
    row = await jobs.get(job)
    assert row is not None and row.checkpoint is not None
    storage = api.app.state.t2m.storage  # type: ignore[attr-defined]
    scene = [storage.path(row.checkpoint.scenes[i].video_key) for i in range(3)]
    n0, n2 = len(packets(scene[0])), len(packets(scene[2]))
    old_packets, new_packets = packets(tmp_path / "v1.mp4"), packets(tmp_path / "v2.mp4")
    assert old_packets[:n0] == new_packets[:n0] and old_packets[-n2:] == new_packets[-n2:]
    assert old_packets[n0:-n2] != new_packets[n0:-n2]
    assert new_packets[n0:-n2] == packets(scene[1])
    with av.open(str(scene[0])) as c:
        mid_scene_1 = float(c.duration or 0) / av.time_base + 1.0
    assert (
        frame_at(tmp_path / "v1.mp4", mid_scene_1) != frame_at(tmp_path / "v2.mp4", mid_scene_1)
    ).any()

    monkeypatch.setattr(regenerate, "MAX_VERSIONS", 2)  # versions are bounded
    again = await api.post(regenerate_url, json=feedback, headers=alice)
    assert again.status_code == 409 and "2 versions, the most a job may have" in again.text


async def test_a_retried_next_version_is_that_version_again(
    api: httpx.AsyncClient, keys: dict, scripted: ScriptedLLM, worker: None
) -> None:
    """A next version's run that ended (here cancelled) and is retried makes that version again,
    with its feedback: the row kept only the job's first request, so the retry made version 1
    anew, without the feedback, and stored it over version 1's files."""
    feedbacks: list[str] = []
    slow = [False]  # the first try of version 2 renders long enough to be cancelled

    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("One", "Two", "Three", duration=2.0)
        if task == "write_scene_code":
            feedbacks.append(data.get("feedback", ""))
            wait = "self.wait(30)" if slow[0] and data.get("feedback") else "self.wait(0.1)"
            return scene_code(data["class_name"], f"self.play(Create(Circle())); {wait}")
        return None

    scripted.handler = handler
    alice = keys["alice"]
    job = (await api.post(GENERATE, json=body(), headers=alice)).json()["job_id"]
    await wait_status(api, job, alice, {"completed"})
    v1 = (await api.get(f"/api/v1/videos/jobs/{job}/download", headers=alice)).content
    feedback = {"feedback": "Show a red square instead"}
    slow[0] = True
    made = await api.post(f"/api/v1/jobs/{job}/scenes/1/regenerate", json=feedback, headers=alice)
    assert made.json()["version"] == 2, made.text
    assert (await api.post(f"/api/v1/jobs/{job}/cancel", headers=alice)).status_code == 202
    await wait_status(api, job, alice, {"cancelled"})
    feedbacks.clear()
    slow[0] = False

    retried = await api.post(f"/api/v1/jobs/{job}/retry", headers=alice)
    assert retried.status_code == 202, retried.text
    done = await wait_status(api, job, alice, {"completed"})
    assert (done["version"], done["previous_version"]) == (2, 1)
    # Scene 1 only, with its feedback (a late call of the cancelled run may add one more).
    assert feedbacks and set(feedbacks) == {feedback["feedback"]}, feedbacks
    old = await api.get(f"/api/v1/videos/jobs/{job}/download?version=1", headers=alice)
    assert old.content == v1


async def test_rest_on_a_running_job_sends_the_update(
    api: httpx.AsyncClient, keys: dict, scripted: ScriptedLLM, worker: None, client: Client
) -> None:
    seen: list[str] = []

    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("One", "Two", "Three", duration=2.0)
        if task == "write_scene_code":
            seen.append(f"{data['scene']['index']}:{data.get('feedback', '')}")
            return scene_code(data["class_name"], "self.play(Create(Circle()))")
        return None

    scripted.handler = handler
    alice = keys["alice"]
    job = (await api.post(GENERATE, json=body("Running regenerate"), headers=alice)).json()
    await wait_planned(client.get_workflow_handle(job["job_id"]))
    url = f"/api/v1/jobs/{job['job_id']}/scenes/2/regenerate"
    r = await api.post(url, json={"feedback": "slower please"}, headers=alice)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "regenerating" and r.json()["version"] == 1
    done = await wait_status(api, job["job_id"], alice, {"completed"})
    assert done["version"] == 1
    counts = await scheduled(client, client.get_workflow_handle(job["job_id"]))
    assert [counts["render_scene", i] for i in range(3)] == [1, 1, 2]
    assert sorted(seen) == ["0:", "1:", "2:", "2:slower please"]
