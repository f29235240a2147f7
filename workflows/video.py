"""VideoWorkflow: orchestration only. Every side effect is an activity, called by name.

plan → for each scene in parallel (author → render until accepted, fixing code errors, layout
findings and critiques, bounded → narrate) → compose → thumbnail → finalize. Status is a query;
the stage is also a search attribute so the Temporal Web UI can filter videos by it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import messages as msg
    from t2m.models import (
        Artifacts,
        JobStatus,
        Narration,
        SceneMedia,
        ScenePlan,
        SceneState,
        SceneStatus,
        Stage,
        Usage,
        VideoPlan,
        VideoRequest,
        VideoResult,
    )
    from workflows import progress
    from workflows.search import SA_STAGE
    from workflows.steps import (
        CATALOG_RETRY,
        DOCS_TIMEOUT,
        HEARTBEAT_TIMEOUT,
        LAYOUT_FIX_ROUNDS,
        LLM_RETRY,
        LLM_TIMEOUT,
        RENDER_TIMEOUT,
        VISUAL_FIX_ROUNDS,
        WORK_RETRY,
        Authored,
        R,
        Rounds,
        T,
        is_cancellation,
        job_record,
        reason_of,
        sibling_queue,
    )


@workflow.defn
class VideoWorkflow:
    @workflow.init
    def __init__(self, req: VideoRequest) -> None:
        self._req = req
        self._status = JobStatus(job_id=workflow.info().workflow_id, status="queued")
        self._plan: VideoPlan | None = None
        self._done: dict[int, SceneMedia] = {}

    @workflow.query
    def status(self) -> JobStatus:
        return self._status

    @workflow.run
    async def run(self, req: VideoRequest) -> VideoResult:
        self._status.status = "running"
        # The start is recorded beside the work, not before it: a database outage delays the
        # catalog, never the video, and a cancel cannot land between the two writes.
        self._started = asyncio.create_task(self._record(self._status.model_copy(deep=True)))
        try:
            result = await self._produce(req)
        except (Exception, asyncio.CancelledError) as err:
            if is_cancellation(err):
                await self._finish(progress.final(self._status, "cancelled", None))
                raise
            reason = reason_of(err)
            await self._finish(progress.final(self._status, "failed", reason))
            raise ApplicationError(reason, type="VideoFailed", non_retryable=True) from err
        await self._finish(progress.final(self._status, "completed", None))
        return result

    async def _record(self, status: JobStatus) -> None:
        """Write the job's state to the catalog, with the finished work a retry can reuse."""
        record = job_record(self._req, status, self._plan, self._done)
        await self._work(
            "record_job",
            record,
            type(None),
            queue="llm",
            start_to_close=timedelta(seconds=30),
            retry_policy=CATALOG_RETRY,
        )

    async def _produce(self, req: VideoRequest) -> VideoResult:
        self._set_stage("planning")
        if req.resume:
            plan, self._done = req.resume.plan, dict(req.resume.scenes)
        else:
            plan = (await self._llm("plan_video", req, msg.PlanResult, "planning")).plan
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
        media: list[SceneMedia] = []
        for r in results:
            if isinstance(r, BaseException):
                raise r
            media.append(r)
        artifacts = await self._assemble(req, media)
        self._status.artifacts = artifacts
        return VideoResult(job_id=self._status.job_id, artifacts=artifacts, scenes=len(media))

    async def _assemble(self, req: VideoRequest, media: list[SceneMedia]) -> Artifacts:
        """Compose the scenes into one video, take its thumbnail, check every artifact landed."""
        job_id = self._status.job_id
        self._set_stage("composing")
        composed = await self._work(
            "compose_video",
            msg.ComposeRequest(job_id=job_id, scenes=media, subtitles=req.subtitles),
            msg.ComposeResult,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
        )
        thumbnail_key = None
        if req.thumbnail:
            at_s = min(composed.duration_s / 2, max(media[0].narration.duration_s, 2.0))
            thumbnail_key = await self._work(
                "make_thumbnail",
                msg.ThumbnailRequest(job_id=job_id, video_key=composed.video_key, at_s=at_s),
                str,
                start_to_close=timedelta(minutes=2),
            )
        self._set_stage("uploading")
        keys = [composed.video_key, composed.srt_key, composed.vtt_key, thumbnail_key]
        size = await self._work(
            "finalize_video",
            msg.FinalizeRequest(job_id=job_id, keys=[k for k in keys if k]),
            int,
            start_to_close=timedelta(minutes=10),
        )
        return Artifacts(
            video_key=composed.video_key,
            srt_key=composed.srt_key,
            vtt_key=composed.vtt_key,
            thumbnail_key=thumbnail_key,
            duration_s=composed.duration_s,
            size_bytes=size,
        )

    # --- one scene: author (storyboard → narrate → code) → render until accepted ---------------

    async def _scene(self, req: VideoRequest, scene: ScenePlan, count: int) -> SceneMedia:
        if scene.index in self._done:  # finished in an earlier run of this job
            return self._done[scene.index]
        st = self._status.scenes[scene.index]
        authored = await self._author(req, scene, count, st)
        video_key = await self._render_until_accepted(req, authored, st)
        self._done[scene.index] = SceneMedia(video_key=video_key, narration=authored.narration)
        self._scene_state(st, "done")
        return self._done[scene.index]

    async def _author(
        self, req: VideoRequest, scene: ScenePlan, count: int, st: SceneStatus
    ) -> Authored:
        """Storyboard the scene, narrate it (so its length and sentence timings are known before
        any code is written), retrieve docs if asked, and write its first code."""
        self._scene_state(st, "storyboarding")
        model = req.planner_model or req.model
        asked = msg.StoryboardRequest(model=model, topic=req.topic, scene=scene, scene_count=count)
        boarded = await self._llm("storyboard_scene", asked, msg.StoryboardResult, "storyboarding")
        board = boarded.storyboard
        if board.narration:
            scene = scene.model_copy(update={"narration": board.narration})
        self._scene_state(st, "narrating")
        narration = await self._work(
            "narrate_scene",
            msg.NarrateRequest(
                job_id=self._status.job_id,
                scene_index=scene.index,
                text=scene.narration,
                voice=req.voice,
            ),
            Narration,
            queue="llm",
            start_to_close=timedelta(minutes=5),
        )
        docs = None
        if req.use_rag and board.doc_queries:
            self._scene_state(st, "retrieving")
            docs = await self._docs(board.doc_queries)
        self._scene_state(st, "generating_code")
        written = await self._llm(
            "write_scene_code",
            msg.CodeRequest(
                model=req.coder_model or req.model,
                topic=req.topic,
                scene=scene,
                scene_count=count,
                storyboard=board,
                docs=docs,
                cues=narration.cues,
            ),
            msg.CodeResult,
            "generating_code",
        )
        return Authored(scene=scene, docs=docs, code=written.code, narration=narration)

    async def _render_until_accepted(
        self, req: VideoRequest, authored: Authored, st: SceneStatus
    ) -> str:
        """Render, and while there is a problem and attempts are left, fix and render again.

        Returns the accepted render's video key; raises SceneFailed when no render worked.
        """
        accepted: msg.RenderOutcome | None = None
        rounds = Rounds()
        for attempt in range(1, req.max_fix_attempts + 1):
            st.attempts = attempt
            self._scene_state(st, "rendering")
            outcome = await self._render(req, authored)
            if outcome.ok:
                accepted = outcome
                st.layout_issues = outcome.layout_issues
            problem = await self._problem(req, authored.scene, outcome, rounds, st)
            st.error = problem
            if problem is None or attempt == req.max_fix_attempts:
                break
            authored.code = await self._fix(req, authored, problem, attempt, st)
        if accepted is None or accepted.video_key is None:
            self._scene_state(st, "failed")
            last = (st.error or "").strip().splitlines()
            raise ApplicationError(
                f"scene {authored.scene.index + 1} ({authored.scene.title!r}) did not render "
                f"after {st.attempts} attempts: {last[-1] if last else 'unknown error'}",
                type="SceneFailed",
                non_retryable=True,
            )
        st.error = None
        return accepted.video_key

    async def _problem(
        self,
        req: VideoRequest,
        scene: ScenePlan,
        outcome: msg.RenderOutcome,
        rounds: Rounds,
        st: SceneStatus,
    ) -> str | None:
        """What the fixer should hear about this render, or None to accept it. Three kinds of
        trouble: a code error, layout findings (bounded rounds), a reviewer's critique (bounded)."""
        if not outcome.ok:
            return outcome.error or "render failed"
        if outcome.layout_issues and rounds.layout < LAYOUT_FIX_ROUNDS:
            rounds.layout += 1
            return "Layout check:\n" + "\n".join(outcome.layout_issues)
        if req.vision_model and rounds.visual < VISUAL_FIX_ROUNDS:
            self._scene_state(st, "reviewing")
            review = await self._llm(
                "critique_scene",
                msg.CritiqueRequest(
                    model=req.vision_model, scene=scene, video_key=outcome.video_key or ""
                ),
                msg.CritiqueResult,
                "reviewing",
            )
            if review.critique is not None:
                rounds.visual += 1
                return "Reviewer's critique of frames from the render:\n" + review.critique
        return None

    async def _fix(
        self, req: VideoRequest, authored: Authored, problem: str, attempt: int, st: SceneStatus
    ) -> str:
        """Ask the model to fix the code; with RAG, the docs of what the problem names go too."""
        self._scene_state(st, "fixing")
        docs = authored.docs
        if req.use_rag:
            found = await self._docs([problem.strip().splitlines()[-1]])
            docs = "\n\n".join(d for d in (found, authored.docs) if d)
        fixed = await self._llm(
            "fix_scene_code",
            msg.FixRequest(
                model=req.coder_model or req.model,
                topic=req.topic,
                scene=authored.scene,
                code=authored.code,
                error=problem,
                attempt=attempt,
                docs=docs,
                cues=authored.narration.cues,
            ),
            msg.CodeResult,
            "fixing",
        )
        return fixed.code

    async def _llm(self, name: str, arg: object, result_type: type[R], stage: str) -> R:
        """Run a model activity and book its usage under `stage`."""
        result = await self._work(
            name, arg, result_type, queue="llm", start_to_close=LLM_TIMEOUT, retry_policy=LLM_RETRY
        )
        self._status.usage[stage] = self._status.usage.get(stage, Usage()).plus(result.usage)
        return result

    async def _work(
        self,
        name: str,
        arg: object,
        result_type: type[T],
        *,
        queue: str = "render",
        start_to_close: timedelta = RENDER_TIMEOUT,
        retry_policy: RetryPolicy = WORK_RETRY,
        **options: Any,
    ) -> T:
        """Run activity `name` on its kind's queue, with the durable retry policy for work."""
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            task_queue=sibling_queue(queue),
            start_to_close_timeout=start_to_close,
            retry_policy=retry_policy,
            **options,
        )

    async def _docs(self, queries: list[str]) -> str:
        req = msg.DocsRequest(queries=queries)
        return await self._work("retrieve_docs", req, str, queue="llm", start_to_close=DOCS_TIMEOUT)

    async def _render(self, req: VideoRequest, authored: Authored) -> msg.RenderOutcome:
        request = msg.RenderRequest(
            job_id=self._status.job_id,
            scene_index=authored.scene.index,
            code=authored.code,
            quality=req.quality,
            narration_s=authored.narration.duration_s,
        )
        return await self._work(
            "render_scene",
            request,
            msg.RenderOutcome,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )

    def _scene_state(self, st: SceneStatus, state: SceneState) -> None:
        st.state = state
        self._refresh()

    def _refresh(self) -> None:
        """While scenes run, the job's stage and percentage follow from theirs."""
        if self._status.current_stage in progress.SCENE_STAGES and self._status.scenes:
            stage = progress.scenes_stage(self._status)
            if stage is not None:
                self._set_stage(stage)
            self._status.percentage = progress.scenes_percentage(self._status)

    def _set_stage(self, stage: Stage) -> None:
        if stage == self._status.current_stage:
            return
        progress.enter_stage(self._status, stage)
        workflow.upsert_search_attributes([SA_STAGE.value_set(stage)])

    async def _finish(self, final: JobStatus) -> None:
        """Record the outcome in the catalog (after the start), then show it: a job that reads as
        ended has its row written. A cancel arriving meanwhile changes nothing (shielded)."""

        async def write() -> None:
            await self._started
            await self._record(final)

        writing = asyncio.ensure_future(write())
        while not writing.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(writing)
        writing.result()
        self._status = final
        stage = final.current_stage if final.status == "completed" else final.status
        workflow.upsert_search_attributes([SA_STAGE.value_set(stage)])
