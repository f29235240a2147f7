"""Every activity of a video, faked by name (the samples-python pattern), for tests of the
workflow's own logic on the real Temporal dev server; `running` serves them on fresh queues."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities.messages import (
    CodeRequest,
    CodeResult,
    ComposeRequest,
    ComposeResult,
    CopyArtifactsRequest,
    CritiqueRequest,
    CritiqueResult,
    DocQueriesRequest,
    DocQueriesResult,
    DocsRequest,
    FinalizeRequest,
    FixRequest,
    JoinRequest,
    NarrateRequest,
    PlanResult,
    RenderOutcome,
    RenderPlan,
    RenderRequest,
    Reusable,
    StoryboardRequest,
    StoryboardResult,
    ThumbnailRequest,
)
from t2m.config import Settings
from t2m.vocabulary.job import JobRecord
from t2m.vocabulary.plan import Artifacts, Narration, ScenePlan, Storyboard, VideoPlan
from t2m.vocabulary.request import VideoRequest
from t2m.vocabulary.usage import Usage
from worker import WORKFLOW_RUNNER
from workflows.deployment import deployment_config, deployment_version, promote
from workflows.video import VideoWorkflow

BILL = Usage(calls=1, prompt_tokens=10, completion_tokens=5, cost_usd=0.001)


@dataclass
class Fakes:
    """Activities by name; `render` decides each render's outcome from (scene, code)."""

    render: Callable[[RenderRequest], RenderOutcome | Awaitable[RenderOutcome]] = lambda r: (
        RenderOutcome(ok=True, video_key=f"renders/{r.scene_index}.mp4")
    )
    critique: str | None = None
    catalog_down_for: int = 0
    """How many `record_job` calls fail first, as if the database were down."""
    catalog_delay_s: float = 0.0
    render_delay_s: float = 0.0
    ranges: list[tuple[int, int]] = field(default_factory=list)
    """What `plan_render` answers: the animation ranges of a split render (none: whole)."""
    joined: list[JoinRequest] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    rendered: list[activity.Info] = field(default_factory=list)
    """Each `render_scene` call's info (workflow id, priority, …), in the order they started."""
    fixes: list[FixRequest] = field(default_factory=list)
    doc_queries: list[str] = field(default_factory=lambda: ["Circle radius"])
    """What the model answers when asked for documentation searches about an error."""
    searched: list[list[str]] = field(default_factory=list)
    """Each `retrieve_docs` call's queries, in order."""
    composed: list[ComposeRequest] = field(default_factory=list)
    records: list[JobRecord] = field(default_factory=list)
    reusable: Reusable = field(default_factory=Reusable)
    """What the whole-result cache finds (nothing, by default)."""
    catalog: list[Callable] | None = None
    """Real catalog activities to serve instead of the recording fake."""
    models: list[Callable] | None = None
    """Real model activities (`LLMActivities(...).all()`) to serve instead of the fakes."""

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
            self.searched.append(req.queries)
            return "docs of " + "; ".join(req.queries)

        @activity.defn(name="doc_queries_for_error")
        async def doc_queries_for_error(req: DocQueriesRequest) -> DocQueriesResult:
            return DocQueriesResult(queries=self.doc_queries, usage=BILL)

        @activity.defn(name="write_scene_code")
        async def write_scene_code(req: CodeRequest) -> CodeResult:
            return CodeResult(code=f"v1 {req.feedback}".strip(), usage=BILL)

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

        @activity.defn(name="find_reusable")
        async def find_reusable(req: VideoRequest) -> Reusable:
            self.calls["find_reusable"] += 1
            return self.reusable

        @activity.defn(name="copy_artifacts")
        async def copy_artifacts(req: CopyArtifactsRequest) -> Artifacts:
            self.calls["copy_artifacts"] += 1
            return req.source.model_copy(update={"video_key": f"jobs/{req.job_id}/video.mp4"})

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
            self.rendered.append(activity.info())
            await asyncio.sleep(self.render_delay_s)
            outcome = self.render(req)
            return await outcome if inspect.isawaitable(outcome) else outcome

        @activity.defn(name="plan_render")
        async def plan_render(req: RenderRequest) -> RenderPlan:
            self.calls["plan_render"] += 1
            return RenderPlan(ranges=self.ranges)

        @activity.defn(name="join_renders")
        async def join_renders(req: JoinRequest) -> RenderOutcome:
            self.joined.append(req)
            return RenderOutcome(ok=True, video_key=f"renders/{req.render.scene_index}.mp4")

        @activity.defn(name="compose_video")
        async def compose_video(req: ComposeRequest) -> ComposeResult:
            self.composed.append(req)
            return ComposeResult(video_key="v.mp4", srt_key=None, vtt_key=None, duration_s=2.0)

        @activity.defn(name="make_thumbnail")
        async def make_thumbnail(req: ThumbnailRequest) -> str:
            return "t.png"

        @activity.defn(name="finalize_video")
        async def finalize_video(req: FinalizeRequest) -> int:
            return 1234

        llm: list[Callable] = [plan_video, storyboard_scene, retrieve_docs, doc_queries_for_error]
        llm += [write_scene_code, fix_scene_code]
        llm += [critique_scene, narrate_scene, find_reusable, copy_artifacts]
        llm += self.catalog or [record_job]
        if self.models:
            faked = {plan_video, storyboard_scene, retrieve_docs, doc_queries_for_error}
            faked |= {write_scene_code, fix_scene_code}
            llm = [*self.models, *(a for a in llm if a not in faked | {critique_scene})]
        media: list[Callable] = [compose_video, make_thumbnail, finalize_video, join_renders]
        return {"llm": llm, "render": [render_scene, plan_render], "media": media}


@contextlib.asynccontextmanager
async def running(
    client: Client,
    fakes: Fakes,
    workflows: Sequence[type] = (VideoWorkflow,),
    render_slots: int | None = None,
    prefix: str | None = None,
) -> AsyncIterator[str]:
    """A worker per queue kind on fresh queues, or on `prefix`'s (`render_slots`: the render
    worker's concurrency, the SDK's default if None); yields the workflow queue."""
    prefix = prefix or f"logic-{uuid.uuid4().hex[:8]}"
    build = deployment_version(Settings())
    versioned = deployment_config(build)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(
                client,
                task_queue=f"{prefix}-video",
                workflows=list(workflows),
                workflow_runner=WORKFLOW_RUNNER,
                deployment_config=versioned,
            )
        )
        for kind, acts in fakes.activities().items():
            slots = render_slots if kind == "render" else None
            await stack.enter_async_context(
                Worker(
                    client,
                    task_queue=f"{prefix}-{kind}",
                    activities=acts,
                    max_concurrent_activities=slots,
                )
            )
        await promote(client, build)
        yield f"{prefix}-video"
