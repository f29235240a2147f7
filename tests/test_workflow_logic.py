"""The workflow's own logic in milliseconds: fix-loop bounds, layout and critique rounds, usage
booking and the progress arithmetic, with every activity faked by name (the samples-python
pattern) on this test's own task queues of the real Temporal dev server."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError

from activities.media import MediaActivities
from activities.messages import (
    RenderOutcome,
    Reusable,
)
from t2m.catalog.storage import LocalStorage
from t2m.config import Settings
from t2m.vocabulary.job import JobStatus, SceneStatus
from t2m.vocabulary.plan import Artifacts
from t2m.vocabulary.request import VideoRequest
from tests.fakes import Fakes, running
from workflows import progress
from workflows.steps import LAYOUT_FIX_ROUNDS, VISUAL_FIX_ROUNDS
from workflows.video import VideoWorkflow


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


async def test_with_rag_each_fix_searches_what_the_model_asked_and_books_it_as_fixing(
    client: Client,
) -> None:
    fakes = Fakes(
        render=lambda r: RenderOutcome(ok=r.code != "v1", error="Traceback\nboom", video_key="k"),
        doc_queries=["Sector radius", "Create"],
    )
    status = await run(client, fakes, use_rag=True)
    assert status.status == "completed"
    assert fakes.searched == [["Sector radius", "Create"]] * 2  # not the error's last line
    assert [f.docs for f in fakes.fixes] == ["docs of Sector radius; Create"] * 2
    assert status.usage["fixing"].calls == 2 * 2  # per fix: the doc searches and the fix


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
    fakes = Fakes(catalog_down_for=2)  # retried after 1 s, then 2 s: the scenes run meanwhile
    status = await run(client, fakes)
    assert status.status == "completed"
    assert [r.status for r in fakes.records] == ["running", "completed"]
    assert fakes.calls["renders before record running"] == 2  # the scenes did not wait


async def cancel_during_record(client: Client, fakes: Fakes, record: int) -> JobStatus:
    """Cancel the job while its `record`-th catalog write is under way (it takes
    `fakes.catalog_delay_s`): waiting for the call, not for a time, holds on a loaded machine."""
    req = VideoRequest(topic="Circles", model="fake/model")
    async with running(client, fakes) as queue:
        handle = await client.start_workflow(
            VideoWorkflow.run, req, id=f"video-{uuid.uuid4()}", task_queue=queue
        )
        deadline = time.monotonic() + 30
        while fakes.calls["record_job"] < record:
            assert time.monotonic() < deadline, fakes.calls
            await asyncio.sleep(0.02)
        await handle.cancel()
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        return await handle.query(VideoWorkflow.status)


async def test_a_cancel_during_the_first_catalog_write_ends_cancelled(client: Client) -> None:
    fakes = Fakes(catalog_delay_s=1.0, render_delay_s=3.0)
    status = await cancel_during_record(client, fakes, 1)
    assert status.status == "cancelled"
    assert [r.status for r in fakes.records] == ["running", "cancelled"]


async def test_a_cancel_while_the_outcome_is_recorded_changes_nothing(client: Client) -> None:
    fakes = Fakes(catalog_delay_s=1.0)  # the work is done at once; recording takes a second
    status = await cancel_during_record(client, fakes, 2)
    assert status.status == "completed"
    assert [r.status for r in fakes.records] == ["running", "completed"]


class SlowResultCache(Fakes):
    """The whole-result cache answers only once `answered` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.answered = asyncio.Event()

    def activities(self) -> dict[str, list]:
        acts = super().activities()

        @activity.defn(name="find_reusable")
        async def find_reusable(req: VideoRequest) -> Reusable:
            self.calls["find_reusable"] += 1
            await asyncio.wait_for(self.answered.wait(), timeout=60)
            return Reusable()

        acts["llm"] = [find_reusable] + [a for a in acts["llm"] if a.__name__ != "find_reusable"]
        return acts


async def test_a_cancel_while_the_result_cache_is_asked_ends_the_job(client: Client) -> None:
    """A job that may reuse a finished one first asks the result cache: a cancel landing then
    (a Ctrl-C right after `t2m generate` started the job) was taken for the cache not answering,
    and the job went on to make its video."""
    fakes = SlowResultCache()
    req = VideoRequest(topic="Circles", model="fake/model", reuse=True)
    async with running(client, fakes) as queue:
        handle = await client.start_workflow(
            VideoWorkflow.run, req, id=f"video-{uuid.uuid4()}", task_queue=queue
        )
        deadline = time.monotonic() + 30
        while fakes.calls["find_reusable"] < 1:
            assert time.monotonic() < deadline, fakes.calls
            await asyncio.sleep(0.02)
        await handle.cancel()
        try:
            with pytest.raises(WorkflowFailureError):
                await asyncio.wait_for(handle.result(), timeout=30)
        finally:
            fakes.answered.set()
        status = await handle.query(VideoWorkflow.status)
    assert status.status == "cancelled"
    assert fakes.calls["plan_video"] == 0
    assert [r.status for r in fakes.records] == ["running", "cancelled"]


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
    assert status.percentage == 85.0 and status.stages_completed[-1] == "rendering"
    progress.enter_stage(status, "uploading")
    assert status.percentage == 95.0
    ended = progress.final(status, "completed", None)
    assert ended.percentage == 100.0 and ended.current_stage == "completed"
    assert status.status == "running"  # `final` copies
    failed = progress.final(status, "failed", "boom")
    assert failed.current_stage == "uploading" and failed.error == "boom"


async def test_an_identical_finished_job_is_reused_without_running_the_pipeline(
    client: Client,
) -> None:
    earlier = Artifacts(video_key="jobs/video-earlier/video.mp4", duration_s=9.0, size_bytes=7)
    fakes = Fakes(reusable=Reusable(job_id="video-earlier", artifacts=earlier, scenes=3))
    status = await run(client, fakes, reuse=True)
    assert status.status == "completed" and status.reused_from == "video-earlier"
    assert status.artifacts is not None and status.artifacts.video_key.endswith("/video.mp4")
    assert status.artifacts.video_key != earlier.video_key  # its own copy
    assert fakes.calls["plan_video"] == fakes.calls["render_scene"] == 0
    assert [r.status for r in fakes.records] == ["running", "completed"]


class GoneFiles(Fakes):
    """The real `copy_artifacts` on a storage that holds none of the reused job's files (they
    were deleted after the catalog offered the job)."""

    def __init__(self, storage: LocalStorage, reusable: Reusable) -> None:
        super().__init__(reusable=reusable)
        self.media = MediaActivities(Settings(data_dir=storage.root), storage)

    def activities(self) -> dict[str, list]:
        acts = super().activities()
        others = [a for a in acts["llm"] if a.__name__ != "copy_artifacts"]
        acts["llm"] = [self.media.copy_artifacts, *others]
        return acts


async def test_an_identical_job_whose_files_are_gone_is_made_anew(
    client: Client, tmp_path: Path
) -> None:
    """The copy of a reused job's files that are gone failed as a retryable error: ~2.5 min of
    retries, then the job failed, and so did every identical request after it."""
    earlier = Artifacts(video_key="jobs/video-earlier/video.mp4", duration_s=9.0, size_bytes=7)
    reusable = Reusable(job_id="video-earlier", artifacts=earlier, scenes=3)
    fakes = GoneFiles(LocalStorage(tmp_path), reusable)
    started = time.monotonic()
    status = await run(client, fakes, reuse=True)
    assert status.status == "completed" and status.reused_from is None, status.error
    assert fakes.calls["plan_video"] == 1 and time.monotonic() - started < 30


async def test_reuse_is_not_looked_for_unless_the_request_asks(client: Client) -> None:
    earlier = Artifacts(video_key="v.mp4", duration_s=9.0)
    fakes = Fakes(reusable=Reusable(job_id="video-earlier", artifacts=earlier, scenes=3))
    status = await run(client, fakes, reuse=False)
    assert status.status == "completed" and status.reused_from is None
    assert fakes.calls["find_reusable"] == 0 and fakes.calls["plan_video"] == 1


async def test_a_split_scene_renders_its_ranges_and_a_failed_range_is_the_scenes_error(
    client: Client,
) -> None:
    """Ranges fan out as render activities and are joined once all worked; a range's code error
    goes to the fixer like a whole render's, and a low-quality scene never asks for a plan."""
    ranges = [(0, 1), (2, 3), (4, 5)]

    def render(r):
        broken = r.code == "v1" and r.span == (2, 3)
        return RenderOutcome(ok=not broken, error="range 2 broke", video_key=f"{r.span}.mp4")

    fakes = Fakes(ranges=ranges, render=render)
    status = await run(client, fakes, quality="high")
    assert status.status == "completed"
    assert fakes.calls["plan_render"] == 2 * 2  # each attempt of each of the 2 scenes
    assert fakes.calls["render_scene"] == 2 * 2 * 3
    assert {f.error for f in fakes.fixes} == {"range 2 broke"}
    assert len(fakes.joined) == 2 and all(j.render.code == "v2" for j in fakes.joined)
    assert [p.video_key for p in fakes.joined[0].parts] == [f"{r}.mp4" for r in ranges]
    low = Fakes(ranges=ranges)
    assert (await run(client, low, quality="low")).status == "completed"
    assert low.calls["plan_render"] == 0 and low.calls["render_scene"] == 2 and not low.joined
