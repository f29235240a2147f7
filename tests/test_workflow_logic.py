"""The workflow's own logic in milliseconds: fix-loop bounds, layout and critique rounds, usage
booking and the progress arithmetic, with every activity faked by name (the samples-python
pattern) on this test's own task queues of the real Temporal dev server."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Worker

from activities.messages import (
    CodeRequest,
    CodeResult,
    ComposeRequest,
    ComposeResult,
    CritiqueRequest,
    CritiqueResult,
    DocsRequest,
    FinalizeRequest,
    FixRequest,
    NarrateRequest,
    PlanResult,
    RenderOutcome,
    RenderRequest,
    StoryboardRequest,
    StoryboardResult,
    ThumbnailRequest,
)
from t2m.models import (
    JobRecord,
    JobStatus,
    Narration,
    ScenePlan,
    SceneStatus,
    Storyboard,
    Usage,
    VideoPlan,
    VideoRequest,
)
from workflows import progress
from workflows.steps import LAYOUT_FIX_ROUNDS, VISUAL_FIX_ROUNDS
from workflows.video import VideoWorkflow

BILL = Usage(calls=1, prompt_tokens=10, completion_tokens=5, cost_usd=0.001)


@dataclass
class Fakes:
    """Activities by name; `render` decides each render's outcome from (scene, code)."""

    render: Callable[[RenderRequest], RenderOutcome] = lambda r: RenderOutcome(
        ok=True, video_key=f"renders/{r.scene_index}.mp4"
    )
    critique: str | None = None
    catalog_down_for: int = 0
    """How many `record_job` calls fail first, as if the database were down."""
    catalog_delay_s: float = 0.0
    render_delay_s: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    fixes: list[FixRequest] = field(default_factory=list)
    records: list[JobRecord] = field(default_factory=list)

    def activities(self) -> dict[str, list[Callable]]:
        @activity.defn(name="plan_video")
        async def plan_video(req: VideoRequest) -> PlanResult:
            self.calls["plan_video"] += 1
            scenes = [ScenePlan(index=i, title=f"S{i}", narration="Hi.") for i in range(2)]
            return PlanResult(plan=VideoPlan(title="T", scenes=scenes), usage=BILL)

        @activity.defn(name="storyboard_scene")
        async def storyboard_scene(req: StoryboardRequest) -> StoryboardResult:
            return StoryboardResult(storyboard=Storyboard(visuals="a circle"), usage=BILL)

        @activity.defn(name="retrieve_docs")
        async def retrieve_docs(req: DocsRequest) -> str:
            return "docs"

        @activity.defn(name="write_scene_code")
        async def write_scene_code(req: CodeRequest) -> CodeResult:
            return CodeResult(code="v1", usage=BILL)

        @activity.defn(name="fix_scene_code")
        async def fix_scene_code(req: FixRequest) -> CodeResult:
            self.fixes.append(req)
            return CodeResult(code=f"v{req.attempt + 1}", usage=BILL)

        @activity.defn(name="critique_scene")
        async def critique_scene(req: CritiqueRequest) -> CritiqueResult:
            self.calls["critique_scene"] += 1
            return CritiqueResult(critique=self.critique, usage=BILL)

        @activity.defn(name="narrate_scene")
        async def narrate_scene(req: NarrateRequest) -> Narration:
            return Narration(audio_key=None, duration_s=1.0, cues=[])

        @activity.defn(name="record_job")
        async def record_job(rec: JobRecord) -> None:
            self.calls["record_job"] += 1
            if self.calls["record_job"] <= self.catalog_down_for:
                raise ConnectionRefusedError("the database is down")
            await asyncio.sleep(self.catalog_delay_s)
            self.calls[f"renders before record {rec.status}"] = self.calls["render_scene"]
            self.records.append(rec)

        @activity.defn(name="render_scene")
        async def render_scene(req: RenderRequest) -> RenderOutcome:
            self.calls["render_scene"] += 1
            await asyncio.sleep(self.render_delay_s)
            return self.render(req)

        @activity.defn(name="compose_video")
        async def compose_video(req: ComposeRequest) -> ComposeResult:
            return ComposeResult(video_key="v.mp4", srt_key=None, vtt_key=None, duration_s=2.0)

        @activity.defn(name="make_thumbnail")
        async def make_thumbnail(req: ThumbnailRequest) -> str:
            return "t.png"

        @activity.defn(name="finalize_video")
        async def finalize_video(req: FinalizeRequest) -> int:
            return 1234

        llm = [plan_video, storyboard_scene, retrieve_docs, write_scene_code, fix_scene_code]
        llm += [critique_scene, narrate_scene, record_job]
        return {"llm": llm, "render": [render_scene, compose_video, make_thumbnail, finalize_video]}


@contextlib.asynccontextmanager
async def running(client: Client, fakes: Fakes) -> AsyncIterator[str]:
    """A worker per queue kind on fresh queues; yields the workflow queue."""
    prefix = f"logic-{uuid.uuid4().hex[:8]}"
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(client, task_queue=f"{prefix}-video", workflows=[VideoWorkflow])
        )
        for kind, acts in fakes.activities().items():
            await stack.enter_async_context(
                Worker(client, task_queue=f"{prefix}-{kind}", activities=acts)
            )
        yield f"{prefix}-video"


async def run(client: Client, fakes: Fakes, **request: object) -> JobStatus:
    """Run one job to its end; return its final status."""
    req = VideoRequest.model_validate({"topic": "Circles", "model": "fake/model", **request})
    async with running(client, fakes) as queue:
        handle = await client.start_workflow(
            VideoWorkflow.run, req, id=f"video-{uuid.uuid4()}", task_queue=queue
        )
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        return await handle.query(VideoWorkflow.status)


async def test_code_errors_are_fixed_at_most_max_attempts_minus_one_times(client: Client) -> None:
    fakes = Fakes(render=lambda r: RenderOutcome(ok=False, error=f"NameError in {r.code}"))
    status = await run(client, fakes, max_fix_attempts=3)
    assert status.status == "failed" and "did not render after 3 attempts" in (status.error or "")
    assert fakes.calls["render_scene"] == 2 * 3
    assert sorted(f.attempt for f in fakes.fixes) == [1, 1, 2, 2]
    assert {f.error for f in fakes.fixes} == {"NameError in v1", "NameError in v2"}
    assert [r.status for r in fakes.records] == ["running", "failed"]


async def test_a_fixed_scene_renders_and_the_job_completes(client: Client) -> None:
    fakes = Fakes(
        render=lambda r: RenderOutcome(ok=r.code != "v1", error="boom", video_key="k.mp4")
    )
    status = await run(client, fakes)
    assert status.status == "completed" and status.percentage == 100
    assert [(s.state, s.attempts, s.error) for s in status.scenes] == [("done", 2, None)] * 2
    assert status.artifacts is not None and status.artifacts.size_bytes == 1234
    assert fakes.records[-1].checkpoint is not None
    assert sorted(fakes.records[-1].checkpoint.scenes) == [0, 1]


async def test_layout_findings_get_bounded_rounds_then_the_scene_is_accepted(
    client: Client,
) -> None:
    fakes = Fakes(
        render=lambda r: RenderOutcome(ok=True, video_key="k.mp4", layout_issues=["off-frame"])
    )
    status = await run(client, fakes, max_fix_attempts=10)
    assert status.status == "completed"
    assert fakes.calls["render_scene"] == 2 * (1 + LAYOUT_FIX_ROUNDS)
    assert all(f.error == "Layout check:\noff-frame" for f in fakes.fixes)
    assert [s.layout_issues for s in status.scenes] == [["off-frame"]] * 2


async def test_a_critique_gets_its_rounds_and_usage_is_booked_per_stage(client: Client) -> None:
    fakes = Fakes(critique="the text is illegible")
    status = await run(client, fakes, vision_model="fake/vision")
    assert status.status == "completed"
    # each round's fixed render is accepted without another review once the rounds are spent
    assert fakes.calls["critique_scene"] == 2 * VISUAL_FIX_ROUNDS
    assert len(fakes.fixes) == 2 * VISUAL_FIX_ROUNDS
    assert fakes.fixes[0].error.startswith("Reviewer's critique")
    calls = {stage: u.calls for stage, u in status.usage.items()}
    assert calls == {
        "planning": 1,
        "storyboarding": 2,
        "generating_code": 2,
        "reviewing": 2,
        "fixing": 2,
    }
    assert status.usage["reviewing"].cost_usd == pytest.approx(0.002)


async def test_a_resumed_job_redoes_only_unfinished_scenes(client: Client) -> None:
    first = Fakes(render=lambda r: RenderOutcome(ok=r.scene_index == 0, video_key="k.mp4"))
    await run(client, first, max_fix_attempts=1)
    checkpoint = first.records[-1].checkpoint
    assert checkpoint is not None and sorted(checkpoint.scenes) == [0]
    again = Fakes()
    status = await run(client, again, resume=checkpoint)
    assert status.status == "completed"
    assert again.calls["plan_video"] == 0 and again.calls["render_scene"] == 1


async def test_a_catalog_outage_delays_the_row_never_the_video(client: Client) -> None:
    fakes = Fakes(catalog_down_for=3)
    status = await run(client, fakes)
    assert status.status == "completed"
    assert [r.status for r in fakes.records] == ["running", "completed"]
    assert fakes.calls["renders before record running"] == 2  # the scenes did not wait


async def cancel_after(client: Client, fakes: Fakes, delay_s: float) -> JobStatus:
    req = VideoRequest(topic="Circles", model="fake/model")
    async with running(client, fakes) as queue:
        handle = await client.start_workflow(
            VideoWorkflow.run, req, id=f"video-{uuid.uuid4()}", task_queue=queue
        )
        await asyncio.sleep(delay_s)
        await handle.cancel()
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        return await handle.query(VideoWorkflow.status)


async def test_a_cancel_during_the_first_catalog_write_ends_cancelled(client: Client) -> None:
    fakes = Fakes(catalog_delay_s=1.0, render_delay_s=3.0)
    status = await cancel_after(client, fakes, 0.3)
    assert status.status == "cancelled"
    assert [r.status for r in fakes.records] == ["running", "cancelled"]


async def test_a_cancel_while_the_outcome_is_recorded_changes_nothing(client: Client) -> None:
    fakes = Fakes(catalog_delay_s=1.0)  # the work is done at once; recording takes a second
    status = await cancel_after(client, fakes, 0.5)
    assert status.status == "completed"
    assert [r.status for r in fakes.records] == ["running", "completed"]


def scenes(*states: str) -> JobStatus:
    return JobStatus(
        job_id="j",
        status="running",
        current_stage="rendering",
        scenes=[SceneStatus.model_validate({"index": i, "state": s}) for i, s in enumerate(states)],
    )


def test_progress_follows_the_slowest_scene() -> None:
    status = scenes("done", "rendering", "generating_code")
    assert progress.scenes_stage(status) == "generating_code"
    assert progress.scenes_percentage(status) == round(10 + 75 * (1 + 0.4 + 0.15) / 3, 1)
    assert progress.scenes_stage(scenes("done", "done")) is None
    assert progress.scenes_percentage(scenes("done", "failed")) == 85.0


def test_entering_a_stage_completes_the_ones_before_it() -> None:
    status = scenes("done")
    progress.enter_stage(status, "composing")
    assert status.percentage == 85.0 and status.stages_completed[-1] == "narrating"
    progress.enter_stage(status, "uploading")
    assert status.percentage == 95.0
    ended = progress.final(status, "completed", None)
    assert ended.percentage == 100.0 and ended.current_stage == "completed"
    assert status.status == "running"  # `final` copies
    failed = progress.final(status, "failed", "boom")
    assert failed.current_stage == "uploading" and failed.error == "boom"
