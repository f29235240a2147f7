"""The steps of one scene, and the plumbing every step shares (activities by name, status).

A base class of `VideoWorkflow` (workflows/video.py), kept apart so each file reads at a glance:
author (storyboard → narrate → code) → render until accepted (fix code errors, layout findings and
critiques, bounded). Orchestration only, like the workflow itself.
"""

from __future__ import annotations

from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import messages as msg
    from t2m.budget import exhausted
    from t2m.models import (
        JobStatus,
        ScenePlan,
        SceneState,
        SceneStatus,
        Stage,
        Usage,
        VideoRequest,
    )
    from workflows import activity_table as act
    from workflows import progress, split, ui
    from workflows.activity_table import ActivitySpec
    from workflows.search import SA_STAGE
    from workflows.steps import (
        LAYOUT_FIX_ROUNDS,
        VISUAL_FIX_ROUNDS,
        Authored,
        Billed,
        BudgetReached,
        Rounds,
    )

A = TypeVar("A")
B = TypeVar("B", bound=Billed)
T = TypeVar("T")


class SceneSteps:
    """What a scene goes through; the job-level workflow owns `_status`."""

    _status: JobStatus

    async def _author(
        self, req: VideoRequest, scene: ScenePlan, count: int, st: SceneStatus, feedback: str = ""
    ) -> Authored:
        """Storyboard the scene, narrate it (so its length and sentence timings are known before
        any code is written), retrieve docs if asked, and write its first code (with the
        requester's `feedback` when the scene is regenerated; its fixes carry it too)."""
        self._scene_state(st, "storyboarding")
        model = req.planner_model or req.model
        asked = msg.StoryboardRequest(
            model=model,
            topic=req.topic,
            scene=scene,
            scene_count=count,
            style=req.style_preferences,
        )
        boarded = await self._llm(act.STORYBOARD_SCENE, asked, "storyboarding")
        board = boarded.storyboard
        if board.narration:
            scene = scene.model_copy(update={"narration": board.narration})
        self._scene_state(st, "narrating")
        narration = await self._call(
            act.NARRATE_SCENE,
            msg.NarrateRequest(
                job_id=self._status.job_id,
                scene_index=scene.index,
                text=scene.narration,
                voice=req.voice,
            ),
        )
        docs = None
        if req.use_rag and board.doc_queries:
            self._scene_state(st, "retrieving")
            docs = await self._docs(board.doc_queries)
        self._scene_state(st, "generating_code")
        written = await self._llm(
            act.WRITE_SCENE_CODE,
            msg.CodeRequest(
                model=req.coder_model or req.model,
                topic=req.topic,
                scene=scene,
                scene_count=count,
                storyboard=board,
                docs=docs,
                cues=narration.cues,
                style=req.style_preferences,
                feedback=feedback,
            ),
            "generating_code",
        )
        return Authored(scene, docs, written.code, narration, feedback)

    async def _render_until_accepted(
        self, req: VideoRequest, authored: Authored, st: SceneStatus
    ) -> str:
        """Render, and while there is a problem and attempts are left, fix and render again.

        Returns the accepted render's video key; raises SceneFailed when no render worked.
        """
        accepted: msg.RenderOutcome | None = None
        rounds, stopped = Rounds(), ""
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
            try:
                authored.code = await self._fix(req, authored, problem, attempt, st)
            except BudgetReached as spent:  # the last good render stays, if there is one
                stopped = f"{spent.message}: "
                break
        if accepted is None or accepted.video_key is None:
            self._scene_state(st, "failed")
            last = (st.error or "").strip().splitlines()
            raise ApplicationError(
                f"{stopped}scene {authored.scene.index + 1} ({authored.scene.title!r}) did not"
                f" render after {st.attempts} attempts: {last[-1] if last else 'unknown error'}",
                type="BudgetReached" if stopped else "SceneFailed",
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
        spent = exhausted(self._status.max_cost_usd, self._status.spent_usd)
        if req.vision_model and rounds.visual < VISUAL_FIX_ROUNDS and not spent:
            self._scene_state(st, "reviewing")
            review = await self._llm(
                act.CRITIQUE_SCENE,
                msg.CritiqueRequest(
                    model=req.vision_model,
                    scene=scene,
                    video_key=outcome.video_key or "",
                    style=req.style_preferences,
                ),
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
            found = await self._docs(await self._queries_for(req, authored, problem))
            docs = "\n\n".join(d for d in (found, authored.docs) if d)
        fixed = await self._llm(
            act.FIX_SCENE_CODE,
            msg.FixRequest(
                model=req.coder_model or req.model,
                topic=req.topic,
                scene=authored.scene,
                code=authored.code,
                error=problem,
                attempt=attempt,
                docs=docs,
                cues=authored.narration.cues,
                style=req.style_preferences,
                feedback=authored.feedback,
            ),
            "fixing",
        )
        return fixed.code

    async def _queries_for(self, req: VideoRequest, authored: Authored, problem: str) -> list[str]:
        """The model's documentation searches for what `problem` is about (booked as fixing)."""
        asked = msg.DocQueriesRequest(
            model=req.coder_model or req.model,
            topic=req.topic,
            scene_index=authored.scene.index,
            code=authored.code,
            error=problem,
            style=req.style_preferences,
        )
        written = await self._llm(act.DOC_QUERIES_FOR_ERROR, asked, "fixing")
        return written.queries

    async def _llm(self, spec: ActivitySpec[A, B], arg: A, stage: str) -> B:
        """Run a model activity and book its usage under `stage`; refused once the budget is
        spent (BudgetReached)."""
        if reason := exhausted(self._status.max_cost_usd, self._status.spent_usd):
            raise BudgetReached(reason)
        result = await self._call(spec, arg)
        self._status.usage[stage] = self._status.usage.get(stage, Usage()).plus(result.usage)
        self._status.spent_usd += result.usage.cost_usd
        return result

    async def _call(self, spec: ActivitySpec[A, T], arg: A) -> T:
        """Run an activity from the table; the Web UI shows it by its summary
        (`workflows/ui.py`: which scene, which render attempt)."""
        return await spec.run(arg, summary=ui.activity_summary(spec.name, arg, self._status))

    async def _docs(self, queries: list[str]) -> str:
        return await self._call(act.RETRIEVE_DOCS, msg.DocsRequest(queries=queries))

    async def _render(self, req: VideoRequest, authored: Authored) -> msg.RenderOutcome:
        request = msg.RenderRequest(
            job_id=self._status.job_id,
            scene_index=authored.scene.index,
            code=authored.code,
            quality=req.quality,
            narration_s=authored.narration.duration_s,
            # authoring.class_name's convention; importing t2m.authoring here would load litellm
            class_name=f"Scene{authored.scene.index + 1}",
        )
        return await split.render(self._call, request)

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
        self._show()

    def _set_stage(self, stage: Stage) -> None:
        if stage == self._status.current_stage:
            return
        progress.enter_stage(self._status, stage)
        workflow.upsert_search_attributes([SA_STAGE.value_set(stage)])
        self._show()

    def _show(self) -> None:
        """The Web UI's current details follow the status (stage, each scene's state)."""
        workflow.set_current_details(ui.current_details(self._status))
