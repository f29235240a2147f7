"""The Temporal Web UI reads like the product: a video workflow, read back through the Temporal
client while it runs, carries its topic as summary, who asked for what as details, current details
that follow its stage and scenes, and a summary per activity naming the scene and render attempt.
Every activity is faked by name (tests/fakes.py) on the real dev server."""

from __future__ import annotations

import asyncio
import re

from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle

from activities.messages import RenderOutcome, RenderRequest
from t2m.config import Settings
from t2m.vocabulary.job import JobStatus, SceneStatus
from t2m.vocabulary.request import VideoRequest
from tests.fakes import Fakes, running
from workflows import ui
from workflows.client import start_video


async def current_details(handle: WorkflowHandle) -> str:
    """What the Web UI shows as current details: the SDK's built-in metadata query."""
    meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return meta.current_details


async def activity_summaries(client: Client, handle: WorkflowHandle) -> list[str]:
    """The user-metadata summary of every ActivityTaskScheduled event in the history."""
    found = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            assert event.user_metadata.HasField("summary"), event
            found.append(client.data_converter.payload_converter.from_payload(
                event.user_metadata.summary, str
            ))  # fmt: skip
    return found


def second_scene_fails_first(r: RenderRequest) -> RenderOutcome:
    """Scene 2's first code fails to render; everything else renders."""
    if r.scene_index == 1 and r.code == "v1":
        return RenderOutcome(
            ok=False, error="Traceback ...\nNameError: name 'Circel' is not defined"
        )
    return RenderOutcome(ok=True, video_key=f"renders/{r.scene_index}-{r.code}.mp4")


async def test_a_running_video_shows_summary_details_current_details_and_activity_summaries(
    client: Client,
) -> None:
    fakes = Fakes(render=second_scene_fails_first, render_delay_s=1.0)
    req = VideoRequest(
        topic="Pythagorean Theorem",
        context="In a right triangle a^2 + b^2 = c^2.",
        model="fake/model",
        quality="low",
        owner="alice",
        use_rag=True,
        voice=None,
    )
    async with running(client, fakes) as queue:
        settings = Settings(
            temporal_address=client.service_client.config.target_host,
            task_queue_prefix=queue.rsplit("-", 1)[0],
        )
        handle = await start_video(client, settings, req)

        # While it runs: the static summary and details, through describe()
        desc = await handle.describe()
        assert await desc.static_summary() == "Pythagorean Theorem"
        details = await desc.static_details() or ""
        for shown in ("**Owner:** alice", "**Quality:** low", "**Model:** fake/model", "silent"):
            assert shown in details, details
        assert "Manim docs in prompts" in details and "up to 3 renders per scene" in details

        # ...and current details that follow the stage and each scene's state
        async with asyncio.timeout(30):
            while "stage **rendering**" not in (now := await current_details(handle)):
                await asyncio.sleep(0.1)
        assert now.startswith("**running** · stage **rendering**"), now
        assert "- Scene 1 · S0 · **rendering** · 1 render" in now, now
        assert "- Scene 2 · S1 · **rendering** · 1 render" in now, now
        async with asyncio.timeout(30):
            while "Scene 2 · S1 · **rendering** · 2 renders" not in (
                now := await current_details(handle)
            ):
                await asyncio.sleep(0.1)
        assert "NameError: name 'Circel' is not defined" in now  # the scene's last error

        await handle.result()
        final = await current_details(handle)
        assert final.startswith("**completed** · stage **completed** · 100%"), final
        assert "- Scene 2 · S1 · **done** · 2 renders" in final, final

        summaries = await activity_summaries(client, handle)
    for expected in (
        "record the job as running",
        "plan the scenes",
        "storyboard scene 1 'S0'",
        "narrate scene 2 'S1'",
        "retrieve Manim docs",
        "write code for scene 2 'S1'",
        "render scene 1 'S0', attempt 1",
        "render scene 2 'S1', attempt 1",
        "write doc searches for the error of scene 2 'S1'",
        "fix scene 2 'S1' after render attempt 1",
        "render scene 2 'S1', attempt 2",
        "compose the scenes into one video",
        "take the thumbnail",
        "check every artifact landed in storage",
        "record the job as completed",
    ):
        assert expected in summaries, (expected, summaries)
    assert "render scene 1 'S0', attempt 2" not in summaries  # scene 1 rendered at once


def test_user_text_cannot_break_the_ui() -> None:
    topic = "Sets | *bold* [link](http://x) <b>\nnew line " + "x" * 600
    req = VideoRequest(topic=topic, model="m", owner="eve|admin")
    summary = ui.static_summary(req)
    assert "\n" not in summary and len(summary) <= ui.SUMMARY_CHARS and summary.endswith("…")
    details = ui.static_details(req)
    assert "**Owner:** eve\\|admin" in details and "\\[link\\]\\(http://x\\) &lt;b&gt;" in details


def test_html_in_user_text_is_escaped_in_summaries_and_details() -> None:
    """The Temporal UI renders a topic's raw HTML (`<img>`, `<svg>`, forms, links) unless it is
    escaped: summary, details, current details and activity summaries carry entities instead."""
    topic = '<img src=x onerror="alert(1)"> & <a href="http://evil">go</a> ' + "<b>" * 80
    req = VideoRequest(topic=topic, context="<svg onload=x>", model="m", owner="<i>eve</i>")
    summary = ui.static_summary(req)
    assert "<" not in summary and ">" not in summary
    assert summary.startswith('&lt;img src=x onerror="alert\\(1\\)"&gt; &amp; &lt;a')
    assert len(summary) <= ui.SUMMARY_CHARS and summary.endswith("…")
    assert not re.search(r"&[a-z#0-9]*…$", summary)  # no entity cut in half
    details = ui.static_details(req)
    assert "<" not in details and "&lt;svg onload=x&gt;" in details
    status = JobStatus(
        job_id="j",
        status="failed",
        current_stage="rendering",
        error="<form action=http://evil><input></form>",
        scenes=[SceneStatus(index=0, title="<img src=y>", state="failed", attempts=1)],
    )
    assert "<" not in ui.current_details(status)
    render = RenderRequest(job_id="j", scene_index=0, code="", quality="low")
    assert "<" not in ui.activity_summary("render_scene", render, status)
    status = JobStatus(
        job_id="j",
        status="running",
        current_stage="rendering",
        scenes=[SceneStatus(index=0, title="a | b", state="fixing", attempts=1, error="x\n| y")],
    )
    rows = [line for line in ui.current_details(status).splitlines() if line.startswith("- ")]
    assert rows == [
        "- Scene 1 · a \\| b · **fixing** · 1 render · \\| y"
    ]  # a list item: no table to break
