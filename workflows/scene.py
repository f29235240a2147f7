"""The steps of one scene, and the plumbing every step shares (activities by name, status).

A helper `VideoWorkflow` (workflows/video.py) composes: it receives the run's `RunState` and makes
one scene: author (storyboard → narrate → code) → render until accepted (fix code errors, layout
findings and critiques, bounded). Orchestration only, like the workflow itself.
"""

from __future__ import annotations

from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import messages as msg
    from t2m.budget import exhausted
    from t2m.errors import ErrorKind
    from t2m.media.voices import is_provider_voice
    from t2m.vocabulary.job import SceneState, SceneStatus, Stage
    from t2m.vocabulary.plan import SceneMedia, ScenePlan
    from t2m.vocabulary.usage import Usage
    from workflows import activity_table as act
    from workflows import progress, split, ui
    from workflows.activity_table import ActivitySpec
    from workflows.search import SA_STAGE
    from workflows.state import RunState
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
    """What a scene goes through, told on the run's `RunState` (its status, finished scenes)."""

    def __init__(self, job: RunState) -> None:
        self.job = job

    async def make(self, scene: ScenePlan, count: int) -> SceneMedia:
        """Make scene `scene` of `count` (unless an earlier run of this job finished it)."""
        if scene.index in self.job.done:
            return self.job.done[scene.index]
        st = self.job.status.scenes[scene.index]
        authored = await self.author(scene, count, st, self.job.feedback(scene.index))
        video_key = await self.render_until_accepted(authored, st)
        self.job.done[scene.index] = SceneMedia(
            video_key=video_key, narration=authored.narration, preview_key=st.preview_key
        )
        self.scene_state(st, "done")
        return self.job.done[scene.index]

    async def author(
        self, scene: ScenePlan, count: int, st: SceneStatus, feedback: str = ""
    ) -> Authored:
        """Storyboard the scene, narrate it (so its length and sentence timings are known before
        any code is written), retrieve docs if asked, and write its first code (with the
        requester's `feedback` when the scene is regenerated; its fixes carry it too)."""
        req = self.job.req
        self.scene_state(st, "storyboarding")
        model = req.planner_model or req.model
        asked = msg.StoryboardRequest(
            model=model,
            topic=req.topic,
            scene=scene,
            scene_count=count,
            style=req.style_preferences,
        )
        boarded = await self.llm(act.STORYBOARD_SCENE, asked, "storyboarding")
        board = boarded.storyboard
        if board.narration:
            scene = scene.model_copy(update={"narration": board.narration})
        self.scene_state(st, "narrating")
        narrate = msg.NarrateRequest(
            job_id=self.job.status.job_id,
            scene_index=scene.index,
            text=scene.narration,
            voice=req.voice,
            owner=req.owner,
        )
        if is_provider_voice(req.voice):  # paid speech: booked, budgeted
            narration = await self.llm(act.NARRATE_SCENE, narrate, "narrating")
        else:
            narration = await self.call(act.NARRATE_SCENE, narrate)
        docs = None
        if req.use_rag and board.doc_queries:
            self.scene_state(st, "retrieving")
            docs = await self._docs(board.doc_queries)
        self.scene_state(st, "generating_code")
        written = await self.llm(
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

    async def render_until_accepted(self, authored: Authored, st: SceneStatus) -> str:
        """Render, and while there is a problem and attempts are left, fix and render again.

        Returns the accepted render's video key; raises SceneFailed when no render worked.
        """
        req = self.job.req
        accepted: msg.RenderOutcome | None = None
        rounds, stopped = Rounds(), ""
        for attempt in range(1, req.max_fix_attempts + 1):
            st.attempts = attempt
            self.scene_state(st, "rendering")
            outcome = await self._render(authored)
            if outcome.ok:
                accepted = outcome
                st.layout_issues = outcome.layout_issues
            problem = await self._problem(authored.scene, outcome, rounds, st)
            st.error = problem
            if problem is None or attempt == req.max_fix_attempts:
                break
            try:
                authored.code = await self._fix(authored, problem, attempt, st)
            except BudgetReached as spent:  # the last good render stays, if there is one
                stopped = f"{spent.message}: "
                break
        if accepted is None or accepted.video_key is None:
            self.scene_state(st, "failed")
            last = (st.error or "").strip().splitlines()
            raise ApplicationError(
                f"{stopped}scene {authored.scene.index + 1} ({authored.scene.title!r}) did not"
                f" render after {st.attempts} attempts: {last[-1] if last else 'unknown error'}",
                type=ErrorKind.BUDGET_REACHED if stopped else ErrorKind.SCENE_FAILED,
                non_retryable=True,
            )
        st.error, st.preview_key = None, accepted.preview_key
        return accepted.video_key

    async def _problem(
        self,
        scene: ScenePlan,
        outcome: msg.RenderOutcome,
        rounds: Rounds,
        st: SceneStatus,
    ) -> str | None:
        """What the fixer should hear about this render, or None to accept it. Three kinds of
        trouble: a code error, layout findings (bounded rounds), a reviewer's critique (bounded)."""
        req = self.job.req
        if not outcome.ok:
            return outcome.error or "render failed"
        if outcome.layout_issues and rounds.layout < LAYOUT_FIX_ROUNDS:
            rounds.layout += 1
            return "Layout check:\n" + "\n".join(outcome.layout_issues)
        spent = exhausted(self.job.status.max_cost_usd, self.job.status.spent_usd)
        if req.vision_model and rounds.visual < VISUAL_FIX_ROUNDS and not spent:
            self.scene_state(st, "reviewing")
            review = await self.llm(
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

    async def _fix(self, authored: Authored, problem: str, attempt: int, st: SceneStatus) -> str:
        """Ask the model to fix the code; with RAG, the docs of what the problem names go too."""
        req = self.job.req
        self.scene_state(st, "fixing")
        docs = authored.docs
        if req.use_rag:
            found = await self._docs(await self._queries_for(authored, problem))
            docs = "\n\n".join(d for d in (found, authored.docs) if d)
        fixed = await self.llm(
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

    async def _queries_for(self, authored: Authored, problem: str) -> list[str]:
        """The model's documentation searches for what `problem` is about (booked as fixing)."""
        req = self.job.req
        asked = msg.DocQueriesRequest(
            model=req.coder_model or req.model,
            topic=req.topic,
            scene_index=authored.scene.index,
            code=authored.code,
            error=problem,
            style=req.style_preferences,
        )
        written = await self.llm(act.DOC_QUERIES_FOR_ERROR, asked, "fixing")
        return written.queries

    async def llm(self, spec: ActivitySpec[A, B], arg: A, stage: str) -> B:
        """Run a model activity and book its usage under `stage`; refused once the budget is
        spent (BudgetReached)."""
        if reason := exhausted(self.job.status.max_cost_usd, self.job.status.spent_usd):
            raise BudgetReached(reason)
        result = await self.call(spec, arg)
        self.job.status.usage[stage] = self.job.status.usage.get(stage, Usage()).plus(result.usage)
        self.job.status.spent_usd += result.usage.cost_usd
        return result

    async def call(self, spec: ActivitySpec[A, T], arg: A) -> T:
        """Run an activity from the table; the Web UI shows it by its summary
        (`workflows/ui.py`: which scene, which render attempt)."""
        return await spec.run(arg, summary=ui.activity_summary(spec.name, arg, self.job.status))

    async def _docs(self, queries: list[str]) -> str:
        return await self.call(act.RETRIEVE_DOCS, msg.DocsRequest(queries=queries))

    async def _render(self, authored: Authored) -> msg.RenderOutcome:
        req = self.job.req
        request = msg.RenderRequest(
            job_id=self.job.status.job_id,
            scene_index=authored.scene.index,
            code=authored.code,
            quality=req.quality,
            narration_s=authored.narration.duration_s,
            # authoring.class_name's convention; importing t2m.authoring.steps here would load litellm
            class_name=f"Scene{authored.scene.index + 1}",
            narration_key=authored.narration.audio_key,
        )
        return await split.render(self.call, request)

    def scene_state(self, st: SceneStatus, state: SceneState) -> None:
        st.state = state
        self.refresh()

    def refresh(self) -> None:
        """While scenes run, the job's stage and percentage follow from theirs."""
        if self.job.status.current_stage in progress.SCENE_STAGES and self.job.status.scenes:
            stage = progress.scenes_stage(self.job.status)
            if stage is not None:
                self.set_stage(stage)
            self.job.status.percentage = progress.scenes_percentage(self.job.status)
        self.show()

    def set_stage(self, stage: Stage) -> None:
        if stage == self.job.status.current_stage:
            return
        progress.enter_stage(self.job.status, stage)
        workflow.upsert_search_attributes([SA_STAGE.value_set(stage)])
        self.show()

    def show(self) -> None:
        """The Web UI's current details follow the status (stage, each scene's state)."""
        workflow.set_current_details(ui.current_details(self.job.status))
