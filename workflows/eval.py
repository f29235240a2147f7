"""EvalWorkflow: a file of topics made into ordinary videos, then judged and reported on.

Each topic is a child `VideoWorkflow` (its own job id, catalog row and Web UI entry, owner "eval")
at the lowest task priority with its own fairness key, so an eval never starves users' jobs. A
failed video is a failed topic, not a failed eval. Then, by name on the llm queue: a judge per
finished video (when a judge model is given) and the report (`eval/<eval id>/` in storage).
`t2m eval` starts it, or registers it as a Temporal Schedule (`ensure_eval_schedule`).
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import Priority, VersioningBehavior
from temporalio.exceptions import ActivityError, CancelledError, ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from t2m.config import Settings
    from t2m.eval.judge import Judgement, JudgeRequest
    from t2m.eval.report import EvalResult, ReportRequest
    from t2m.eval.runs import EvalItem, EvalProgress, EvalRequest, VideoOutcome
    from workflows.activity_table import JUDGE_VIDEO, WRITE_EVAL_REPORT
    from workflows.search import search_attributes
    from workflows.steps import reason_of
    from workflows.ui import md, one_line, static_details, static_summary
    from workflows.video import VideoWorkflow

EVAL_OWNER = "eval"
EVAL_PRIORITY = Priority(priority_key=5, fairness_key=EVAL_OWNER)
"""The lowest task priority, with the eval's own fairness key: users' jobs go first."""


@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class EvalWorkflow:
    @workflow.init
    def __init__(self, req: EvalRequest) -> None:
        self._progress = EvalProgress()
        self._total = len(req.items)

    @workflow.query
    def progress(self) -> EvalProgress:
        return self._progress

    @workflow.run
    async def run(self, req: EvalRequest) -> EvalResult:
        started = workflow.now()
        outcomes = await asyncio.gather(*(self._video(item) for item in req.items))
        judgements = await asyncio.gather(
            *(self._judge(req, item, o) for item, o in zip(req.items, outcomes, strict=True))
        )
        report = ReportRequest(
            eval_id=workflow.info().workflow_id,
            name=req.name,
            judge_model=req.judge_model,
            topics=[item.topic for item in req.items],
            outcomes=list(outcomes),
            judgements=list(judgements),
            wall_s=(workflow.now() - started).total_seconds(),
        )
        return await WRITE_EVAL_REPORT.run(report, summary="write the eval report")

    async def _video(self, item: EvalItem) -> VideoOutcome:
        """One topic's video as an ordinary job; how it ended, failure included."""
        req = item.request
        job_id = f"video-{workflow.uuid4()}"
        self._progress.jobs[job_id] = item.topic.theorem
        started = workflow.now()
        try:
            result = await workflow.execute_child_workflow(
                VideoWorkflow.run,
                req,
                id=job_id,
                task_queue=workflow.info().task_queue,
                priority=EVAL_PRIORITY,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                static_summary=static_summary(req),
                static_details=static_details(req),
                search_attributes=search_attributes(req),
            )
            outcome = VideoOutcome(
                job_id=job_id,
                status="completed",
                artifacts=result.artifacts,
                wall_s=(workflow.now() - started).total_seconds(),
            )
        except ChildWorkflowError as e:
            outcome = VideoOutcome(
                job_id=job_id,
                status="cancelled" if isinstance(e.cause, CancelledError) else "failed",
                error=reason_of(e.cause or e),
                wall_s=(workflow.now() - started).total_seconds(),
            )
        self._progress.finished.append(outcome)
        self._show()
        return outcome

    def _show(self) -> None:
        """The Web UI's current details: how many topics are done, and how each ended."""
        done = self._progress.finished
        lines = [f"**{len(done)} of {self._total} topics done**", ""]
        for o in done:
            topic = md(one_line(self._progress.jobs[o.job_id], 60))
            lines.append(f"- {o.status}: {topic} (`{o.job_id}`, {o.wall_s:.0f} s)")
        workflow.set_current_details("\n".join(lines))

    async def _judge(
        self, req: EvalRequest, item: EvalItem, video: VideoOutcome
    ) -> Judgement | None:
        """The judge's scores for a finished video; a judge that keeps failing leaves them out."""
        if req.judge_model is None or video.artifacts is None:
            return None
        judge = JudgeRequest(
            model=req.judge_model,
            topic=item.topic,
            video_key=video.artifacts.video_key,
            srt_key=video.artifacts.srt_key,
        )
        try:
            return await JUDGE_VIDEO.run(
                judge, summary=f"judge {one_line(item.topic.theorem, 60)!r}"
            )
        except ActivityError as e:
            return Judgement(error=f"the judge failed: {reason_of(e)}")


def schedule_id(settings: Settings, name: str) -> str:
    return f"{settings.task_queue_prefix}-eval-{name}"


async def ensure_eval_schedule(
    client: Client, settings: Settings, req: EvalRequest, cron: str
) -> str:
    """Run the eval `req` on `cron` (a Temporal Schedule, created or replaced); its id."""
    sid = schedule_id(settings, req.name)
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            EvalWorkflow.run,
            req,
            id=sid,
            task_queue=settings.queue("video"),
            priority=EVAL_PRIORITY,
            static_summary=one_line(f"eval {req.name}: {len(req.items)} topics", 160),
        ),
        spec=ScheduleSpec(cron_expressions=[cron]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(sid, schedule)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(sid).update(replace)
    return sid
