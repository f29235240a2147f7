"""VideoWorkflow: orchestration only. Every side effect is an activity, called by name.

plan → for each scene in parallel (storyboard → retrieve docs if asked → write code → render →
fix on a code error, a layout finding or a reviewer's critique, bounded → narrate) → compose →
thumbnail → finalize. Status is a query; the current stage is also a search attribute so the
Temporal Web UI can filter videos by it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        SA_STAGE,
        STAGES,
        Artifacts,
        Checkpoint,
        CodeRequest,
        CodeResult,
        ComposeRequest,
        ComposeResult,
        CritiqueRequest,
        CritiqueResult,
        DocsRequest,
        FinalizeRequest,
        FixRequest,
        JobRecord,
        JobStatus,
        NarrateRequest,
        Narration,
        PlanResult,
        RenderOutcome,
        RenderRequest,
        SceneMedia,
        ScenePlan,
        SceneStatus,
        StoryboardRequest,
        StoryboardResult,
        ThumbnailRequest,
        Usage,
        VideoPlan,
        VideoRequest,
        VideoResult,
    )

# Durable retries: transient trouble (rate limits, a worker that died, a storage hiccup). Errors
# raised as non-retryable (bad key, unknown model, invalid input) fail at once instead.
LLM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=6,
)
WORK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=4,
)
LLM_TIMEOUT = timedelta(minutes=5)
RENDER_TIMEOUT = timedelta(minutes=20)
HEARTBEAT_TIMEOUT = timedelta(seconds=10)

# Share of the overall percentage each part of the job carries; scenes split theirs evenly.
PLAN_WEIGHT, SCENES_WEIGHT, COMPOSE_WEIGHT = 10.0, 75.0, 10.0
SCENE_PROGRESS = {
    "pending": 0.0,
    "storyboarding": 0.05,
    "retrieving": 0.1,
    "generating_code": 0.15,
    "rendering": 0.4,
    "reviewing": 0.7,
    "fixing": 0.5,
    "narrating": 0.9,
    "done": 1.0,
    "failed": 1.0,
}
SCENE_STAGE = {
    "pending": "planning",
    "storyboarding": "planning",
    "retrieving": "retrieving",
    "generating_code": "generating_code",
    "fixing": "generating_code",
    "rendering": "rendering",
    "reviewing": "rendering",
    "narrating": "narrating",
}
SCENE_STAGES = frozenset(SCENE_STAGE.values())
LAYOUT_FIX_ROUNDS = 2
"""Fix rounds spent on layout findings before a scene is accepted with them listed."""
VISUAL_FIX_ROUNDS = 1
"""Fix rounds spent on a vision reviewer's critique."""


def _sibling_queue(kind: str) -> str:
    """`t2m-video` → `t2m-llm`: activity queues share the workflow queue's prefix."""
    prefix = workflow.info().task_queue.rsplit("-", 1)[0]
    return f"{prefix}-{kind}"


def _is_cancellation(err: BaseException) -> bool:
    return isinstance(err, asyncio.CancelledError | CancelledError) or (
        isinstance(err, ActivityError) and isinstance(err.cause, CancelledError)
    )


def _reason(err: BaseException) -> str:
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return str(err) or type(err).__name__


@workflow.defn
class VideoWorkflow:
    @workflow.init
    def __init__(self, req: VideoRequest) -> None:
        self._req = req
        self._status = JobStatus(job_id=workflow.info().workflow_id, status="queued")
        self._stage = "queued"
        self._plan: VideoPlan | None = None
        self._done: dict[int, SceneMedia] = {}

    @workflow.query
    def status(self) -> JobStatus:
        return self._status

    @workflow.run
    async def run(self, req: VideoRequest) -> VideoResult:
        self._status.status = "running"
        await self._record(self._status)
        try:
            result = await self._produce(req)
        except (Exception, asyncio.CancelledError) as err:
            if _is_cancellation(err):
                await self._finish(self._final("cancelled", None))
                raise
            reason = _reason(err)
            await self._finish(self._final("failed", reason))
            raise ApplicationError(reason, type="VideoFailed", non_retryable=True) from err
        await self._finish(self._final("completed", None))
        return result

    async def _record(self, status: JobStatus) -> None:
        """Write the job's state to the catalog, with the finished work a retry can reuse."""
        checkpoint = Checkpoint(plan=self._plan, scenes=self._done) if self._plan else None
        await workflow.execute_activity(
            "record_job",
            JobRecord(
                job_id=status.job_id,
                owner=self._req.owner,
                request=self._req.model_dump(exclude={"resume"}),
                status=status.status,
                progress=status,
                error=status.error,
                artifacts=status.artifacts,
                checkpoint=checkpoint,
            ),
            task_queue=_sibling_queue("llm"),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=WORK_RETRY,
        )

    async def _produce(self, req: VideoRequest) -> VideoResult:
        job_id = self._status.job_id
        self._set_stage("planning")
        if req.resume:
            plan, self._done = req.resume.plan, dict(req.resume.scenes)
        else:
            planned = await self._llm("plan_video", req, PlanResult, "planning")
            plan = planned.plan
        self._plan = plan
        self._status.scenes = [
            SceneStatus(
                index=s.index, title=s.title, state="done" if s.index in self._done else "pending"
            )
            for s in plan.scenes
        ]
        self._refresh()

        results = await asyncio.gather(
            *(self._scene(req, s, len(plan.scenes)) for s in plan.scenes), return_exceptions=True
        )
        # Scenes that finished stay in storage (keyed by their inputs), so a retry reuses them.
        for r in results:
            if isinstance(r, BaseException):
                raise r
        media: list[SceneMedia] = list(results)  # type: ignore[arg-type]

        self._set_stage("composing")
        composed = await workflow.execute_activity(
            "compose_video",
            ComposeRequest(job_id=job_id, scenes=media, subtitles=req.subtitles),
            result_type=ComposeResult,
            task_queue=_sibling_queue("render"),
            start_to_close_timeout=RENDER_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=WORK_RETRY,
        )
        thumbnail_key = None
        if req.thumbnail:
            first = media[0]
            thumbnail_key = await workflow.execute_activity(
                "make_thumbnail",
                ThumbnailRequest(
                    job_id=job_id,
                    video_key=composed.video_key,
                    at_s=min(composed.duration_s / 2, max(first.narration.duration_s, 2.0)),
                ),
                result_type=str,
                task_queue=_sibling_queue("render"),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=WORK_RETRY,
            )

        self._set_stage("uploading")
        keys = [k for k in (composed.video_key, composed.srt_key, composed.vtt_key) if k]
        if thumbnail_key:
            keys.append(thumbnail_key)
        size = await workflow.execute_activity(
            "finalize_video",
            FinalizeRequest(job_id=job_id, keys=keys),
            result_type=int,
            task_queue=_sibling_queue("render"),
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=WORK_RETRY,
        )
        artifacts = Artifacts(
            video_key=composed.video_key,
            srt_key=composed.srt_key,
            vtt_key=composed.vtt_key,
            thumbnail_key=thumbnail_key,
            duration_s=composed.duration_s,
            size_bytes=size,
        )
        self._status.artifacts = artifacts
        return VideoResult(job_id=job_id, artifacts=artifacts, scenes=len(media))

    async def _llm(self, name: str, arg: object, result_type: type, stage: str):  # noqa: ANN202
        """Run a model activity and book its usage under `stage`."""
        result = await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            task_queue=_sibling_queue("llm"),
            start_to_close_timeout=LLM_TIMEOUT,
            retry_policy=LLM_RETRY,
        )
        usage = self._status.usage.get(stage, Usage())
        self._status.usage[stage] = usage.plus(result.usage)
        return result

    async def _scene(self, req: VideoRequest, scene: ScenePlan, count: int) -> SceneMedia:
        if scene.index in self._done:  # finished in an earlier run of this job
            return self._done[scene.index]
        st = self._status.scenes[scene.index]
        self._scene_state(st, "storyboarding")
        board = await self._llm(
            "storyboard_scene",
            StoryboardRequest(
                model=req.planner_model or req.model,
                topic=req.topic,
                scene=scene,
                scene_count=count,
            ),
            StoryboardResult,
            "storyboarding",
        )
        if board.storyboard.narration:
            scene = scene.model_copy(update={"narration": board.storyboard.narration})
        docs = None
        if req.use_rag and board.storyboard.doc_queries:
            self._scene_state(st, "retrieving")
            docs = await self._docs(board.storyboard.doc_queries)
        self._scene_state(st, "generating_code")
        written = await self._llm(
            "write_scene_code",
            CodeRequest(
                model=req.coder_model or req.model,
                topic=req.topic,
                scene=scene,
                scene_count=count,
                storyboard=board.storyboard,
                docs=docs,
            ),
            CodeResult,
            "generating_code",
        )
        code = written.code
        accepted: RenderOutcome | None = None
        layout_rounds = visual_rounds = 0
        for attempt in range(1, req.max_fix_attempts + 1):
            st.attempts = attempt
            self._scene_state(st, "rendering")
            outcome = await self._render(req, scene, code)
            problem = outcome.error
            if outcome.ok:
                accepted = outcome
                st.layout_issues = outcome.layout_issues
                if outcome.layout_issues and layout_rounds < LAYOUT_FIX_ROUNDS:
                    layout_rounds += 1
                    problem = "Layout check:\n" + "\n".join(outcome.layout_issues)
                elif req.vision_model and visual_rounds < VISUAL_FIX_ROUNDS:
                    self._scene_state(st, "reviewing")
                    review = await self._llm(
                        "critique_scene",
                        CritiqueRequest(
                            model=req.vision_model, scene=scene, video_key=outcome.video_key or ""
                        ),
                        CritiqueResult,
                        "reviewing",
                    )
                    if review.critique is None:
                        break
                    visual_rounds += 1
                    problem = "Reviewer's critique of frames from the render:\n" + review.critique
                else:
                    break
            st.error = problem
            if attempt == req.max_fix_attempts:
                break
            self._scene_state(st, "fixing")
            fix_docs = docs
            if req.use_rag and problem:  # the docs of what the error names, then the scene's own
                found = await self._docs([problem.strip().splitlines()[-1]])
                fix_docs = "\n\n".join(d for d in (found, docs) if d)
            fixed = await self._llm(
                "fix_scene_code",
                FixRequest(
                    model=req.coder_model or req.model,
                    topic=req.topic,
                    scene=scene,
                    code=code,
                    error=problem or "",
                    attempt=attempt,
                    docs=fix_docs,
                ),
                CodeResult,
                "fixing",
            )
            code = fixed.code
        if accepted is None or accepted.video_key is None:
            self._scene_state(st, "failed")
            last = (st.error or "").strip().splitlines()
            raise ApplicationError(
                f"scene {scene.index + 1} ({scene.title!r}) did not render after "
                f"{st.attempts} attempts: {last[-1] if last else 'unknown error'}",
                type="SceneFailed",
                non_retryable=True,
            )
        st.error = None
        self._scene_state(st, "narrating")
        narration = await workflow.execute_activity(
            "narrate_scene",
            NarrateRequest(
                job_id=self._status.job_id,
                scene_index=scene.index,
                text=scene.narration,
                voice=req.voice,
            ),
            result_type=Narration,
            task_queue=_sibling_queue("llm"),
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=WORK_RETRY,
        )
        self._done[scene.index] = SceneMedia(video_key=accepted.video_key, narration=narration)
        self._scene_state(st, "done")
        return self._done[scene.index]

    async def _docs(self, queries: list[str]) -> str:
        return await workflow.execute_activity(
            "retrieve_docs",
            DocsRequest(queries=queries),
            result_type=str,
            task_queue=_sibling_queue("llm"),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=WORK_RETRY,
        )

    async def _render(self, req: VideoRequest, scene: ScenePlan, code: str) -> RenderOutcome:
        return await workflow.execute_activity(
            "render_scene",
            RenderRequest(
                job_id=self._status.job_id, scene_index=scene.index, code=code, quality=req.quality
            ),
            result_type=RenderOutcome,
            task_queue=_sibling_queue("render"),
            start_to_close_timeout=RENDER_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=WORK_RETRY,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )

    # --- status bookkeeping -------------------------------------------------------------------

    def _scene_state(self, st: SceneStatus, state: str) -> None:
        st.state = state  # type: ignore[assignment]
        self._refresh()

    def _refresh(self) -> None:
        """Derive the job's stage and percentage from the scenes while they run."""
        scenes = self._status.scenes
        if self._stage in SCENE_STAGES and scenes:
            active = [SCENE_STAGE[s.state] for s in scenes if s.state in SCENE_STAGE]
            if active:
                self._set_stage(min(active, key=STAGES.index))
            done = sum(SCENE_PROGRESS[s.state] for s in scenes) / len(scenes)
            self._status.percentage = round(PLAN_WEIGHT + SCENES_WEIGHT * done, 1)

    def _set_stage(self, stage: str) -> None:
        if stage == self._stage:
            return
        self._stage = stage
        self._status.current_stage = stage
        self._status.stages_completed = [s for s in STAGES[: STAGES.index(stage)]]
        if stage == "composing":
            self._status.percentage = PLAN_WEIGHT + SCENES_WEIGHT
        elif stage == "uploading":
            self._status.percentage = PLAN_WEIGHT + SCENES_WEIGHT + COMPOSE_WEIGHT
        elif stage == "completed":
            self._status.percentage = 100.0
        workflow.upsert_search_attributes([SA_STAGE.value_set(stage)])

    def _final(self, status: str, error: str | None) -> JobStatus:
        final = self._status.model_copy(deep=True, update={"status": status, "error": error})
        if status == "completed":
            final.current_stage, final.stages_completed = "completed", list(STAGES[:-1])
            final.percentage = 100.0
        return final

    async def _finish(self, final: JobStatus) -> None:
        """Record the outcome in the catalog first, then show it: a job that reads as ended has
        its row (artifacts, checkpoint, completion time) already written."""
        await self._record(final)
        self._status = final
        self._stage = final.current_stage if final.status == "completed" else final.status
        workflow.upsert_search_attributes([SA_STAGE.value_set(self._stage)])
