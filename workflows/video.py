"""VideoWorkflow: orchestration only. Every side effect is an activity, called by name.

plan → for each scene in parallel (author → render until accepted, fixing code errors, layout
findings and critiques, bounded → narrate) → compose → thumbnail → finalize. Status is a query,
and is also kept in the run's memo (`STATUS_MEMO`), so that the API reads it from a describe or
from the history it watches without asking a worker; the stage is also a search attribute so the
Temporal Web UI can filter videos by it.
"""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
)

with workflow.unsafe.imports_passed_through():
    from activities import messages as msg
    from t2m.errors import ErrorKind
    from t2m.media.languages import spoken_language
    from t2m.vocabulary.job import JobStatus, SceneStatus, VideoResult
    from t2m.vocabulary.plan import Artifacts, SceneMedia
    from t2m.vocabulary.request import VideoRequest
    from workflows import activity_table as act
    from workflows import progress
    from workflows.regenerate import SceneRedos
    from workflows.scene import SceneSteps
    from workflows.search import SA_STAGE
    from workflows.state import RunState
    from workflows.steps import (
        is_cancellation,
        is_retryable,
        job_record,
        reason_of,
    )


STATUS_MEMO = "status"
"""The memo field that holds the run's status: what the `status` query answers, upserted in the
workflow task that changed it (`VideoWorkflow._publish_status`)."""
STATUS_MEMO_PATCH = "status-memo"
"""Runs started before the memo was kept replay without it (and are asked by query)."""
REUSE_CANCEL_PATCH = "reuse-lookup-cancel"
"""A cancel landing while the result cache is asked ends the job (it was taken for the cache not
answering, and the job went on); runs that swallowed one replay without it."""

REUSED_GONE_PATCH = "reused-gone-made-anew"
"""An identical job whose files are gone is not reused: the video is made anew (runs before the
patch failed)."""

JOB_ENDING_ERRORS = (
    ActivityError,
    ChildWorkflowError,
    ApplicationError,
    CancelledError,
    asyncio.CancelledError,
)
"""What ends a job as failed or cancelled: its activities' and children's failures, its own
decisions (a scene that did not render, the budget), a cancel."""


@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class VideoWorkflow:
    """One video job. Its state is one `RunState`; the scene steps and the in-run redos are
    helpers that receive it (composed, not inherited)."""

    @workflow.init
    def __init__(self, req: VideoRequest) -> None:
        self._job = RunState.of(req, workflow.info().workflow_id)
        self._steps = SceneSteps(self._job)
        self._redos = SceneRedos(self._job, self._steps)

    @workflow.query
    def status(self) -> JobStatus:
        return self._job.status

    @workflow.update
    async def regenerate_scene(self, index: int, feedback: str = "") -> SceneStatus:
        """Accept a redo of scene `index` with `feedback` (the video gets the new scene); answers
        at once with the scene as it stands, while the redo runs (workflows/regenerate.py)."""
        return self._redos.accept(index, feedback)

    @regenerate_scene.validator
    def _validate_regenerate_scene(self, index: int, feedback: str = "") -> None:
        self._redos.validate(index)

    @workflow.run
    async def run(self, req: VideoRequest) -> VideoResult:
        job = self._job
        job.status.status = "running"
        if workflow.patched(STATUS_MEMO_PATCH):
            job.publisher = asyncio.create_task(self._publish_status())
        # The start is recorded beside the work, not before it: a database outage delays the
        # catalog, never the video, and a cancel cannot land between the two writes.
        job.started = asyncio.create_task(self._record(job.status.model_copy(deep=True)))
        try:
            result = await self._produce(req)
        except JOB_ENDING_ERRORS as err:
            # Only what happened to the job's work ends it. Any other exception is a bug in
            # workflow code: it fails the workflow task, which Temporal retries (and /health
            # reports) until a fixed worker is deployed, and the job goes on from there.
            job.composing = True  # its scenes are final: no redo while the outcome is recorded
            if is_cancellation(err):
                self._redos.cancel()
                await self._finish(progress.final(job.status, "cancelled", None))
                raise
            reason = reason_of(err)
            await self._finish(progress.final(job.status, "failed", reason, is_retryable(err)))
            raise ApplicationError(reason, type=ErrorKind.VIDEO_FAILED, non_retryable=True) from err
        await self._finish(progress.final(job.status, "completed", None))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _publish_status(self) -> None:
        """Keep the memo's status equal to the query's: after every activation that changed it,
        one upsert in that same workflow task (an event beside the task's own, no extra task), so
        the status at any history length is the last one upserted before it. Status requests then
        cost the API a describe or nothing (its watcher reads the upserts as they land) instead of
        a query that a worker answers (bench/capacity.py: ~10 ms of Temporal and worker CPU each,
        most of the status cost with 10 pollers)."""
        published: JobStatus | None = None

        def changed() -> bool:
            return self._job.status != published

        while True:
            await workflow.wait_condition(changed)
            published = self._job.status.model_copy(deep=True)
            workflow.upsert_memo({STATUS_MEMO: published})

    async def _record(self, status: JobStatus) -> None:
        """Write the job's state to the catalog, with the finished work a retry can reuse. A
        write that cannot be made (an error that will not heal, or a database away for longer
        than `CATALOG_WINDOW`) is given up, never the job: the reconciler repairs the row."""
        job = self._job
        job.writes += 1
        record = job_record(job.req, status, job.plan, job.done, not job.redone, seq=job.writes)
        try:
            await self._steps.call(act.RECORD_JOB, record)
        except ActivityError as err:  # the catalog never fails a job: the reconciler repairs it
            workflow.logger.warning("catalog write for %s given up: %s", status.status, err)

    async def _produce(self, req: VideoRequest) -> VideoResult:
        job, steps = self._job, self._steps
        if req.reuse and not req.resume and (reused := await self._reuse(req)) is not None:
            return reused
        steps.set_stage("planning")
        if req.resume:
            plan, job.done = req.resume.plan, dict(req.resume.scenes)
            if req.regenerate:  # a finished job's next version: that scene is made anew
                job.done.pop(req.regenerate.index, None)
        else:
            plan = (await steps.llm(act.PLAN_VIDEO, req, "planning")).plan
        job.plan = plan
        job.status.scenes = [
            SceneStatus(
                index=s.index,
                title=s.title,
                state="done" if s.index in job.done else "pending",
                preview_key=job.done[s.index].preview_key if s.index in job.done else None,
            )
            for s in plan.scenes
        ]
        steps.refresh()
        results = await asyncio.gather(
            *(steps.make(s, len(plan.scenes)) for s in plan.scenes), return_exceptions=True
        )
        # Scenes that finished stay in storage (keyed by their inputs), so a retry reuses them.
        for r in results:
            if isinstance(r, BaseException):
                raise r
        await self._redos.all_done()  # regenerate_scene updates
        job.composing = True
        media = [job.done[s.index] for s in plan.scenes]
        artifacts = await self._assemble(req, media)
        job.status.artifacts = artifacts
        return VideoResult(job_id=job.status.job_id, artifacts=artifacts, scenes=len(media))

    async def _reuse(self, req: VideoRequest) -> VideoResult | None:
        """The whole-result cache: a finished identical job's video, copied for this job."""
        status, call = self._job.status, self._steps.call
        try:
            found = await call(act.FIND_REUSABLE, req)
        except ActivityError as err:
            if is_cancellation(err) and workflow.patched(REUSE_CANCEL_PATCH):
                raise  # the job was cancelled (runs before the patch went on: they replay so)
            return None  # the catalog cannot say: make the video anew
        if found.job_id is None or found.artifacts is None:
            return None
        copy = msg.CopyArtifactsRequest(job_id=status.job_id, source=found.artifacts)
        try:
            artifacts = await call(act.COPY_ARTIFACTS, copy)
        except ActivityError as err:
            cause = err.cause
            gone = isinstance(cause, ApplicationError) and cause.type == ErrorKind.REUSED_GONE
            if gone and workflow.patched(REUSED_GONE_PATCH):
                return None  # the identical job's files were deleted: make the video anew
            raise
        status.reused_from, status.artifacts = found.job_id, artifacts
        return VideoResult(job_id=status.job_id, artifacts=artifacts, scenes=found.scenes)

    async def _assemble(self, req: VideoRequest, media: list[SceneMedia]) -> Artifacts:
        """Compose the scenes into one video, take its thumbnail, check every artifact landed."""
        job_id, version, steps = self._job.status.job_id, self._job.version(), self._steps
        steps.set_stage("composing")
        composed = await steps.call(
            act.COMPOSE_VIDEO,
            msg.ComposeRequest(
                job_id=job_id,
                scenes=media,
                subtitles=req.subtitles,
                version=version,
                language=spoken_language(req.style_preferences, req.voice),
            ),
        )
        thumbnail_key = None
        if req.thumbnail:
            at_s = min(composed.duration_s / 2, max(media[0].narration.duration_s, 2.0))
            thumbnail_key = await steps.call(
                act.MAKE_THUMBNAIL,
                msg.ThumbnailRequest(
                    job_id=job_id, video_key=composed.video_key, at_s=at_s, version=version
                ),
            )
        steps.set_stage("uploading")
        keys = [composed.video_key, composed.srt_key, composed.vtt_key, thumbnail_key]
        size = await steps.call(
            act.FINALIZE_VIDEO, msg.FinalizeRequest(job_id=job_id, keys=[k for k in keys if k])
        )
        return Artifacts(
            video_key=composed.video_key,
            srt_key=composed.srt_key,
            vtt_key=composed.vtt_key,
            thumbnail_key=thumbnail_key,
            duration_s=composed.duration_s,
            size_bytes=size,
            version=version,
        )

    async def _finish(self, final: JobStatus) -> None:
        """Record the outcome in the catalog (after the start), then show it: a job that reads as
        ended has its row written. A cancel arriving meanwhile changes nothing (shielded)."""

        async def write() -> None:
            assert self._job.started is not None  # run() starts it first
            await self._job.started
            await self._record(final)

        writing = asyncio.ensure_future(write())
        while not writing.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(writing)
        writing.result()
        self._job.status = final
        stage = final.current_stage if final.status == "completed" else final.status
        workflow.upsert_search_attributes([SA_STAGE.value_set(stage)])
        self._steps.show()
