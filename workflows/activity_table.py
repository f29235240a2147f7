"""Every activity t2m runs, in one table: its name, task queue, argument and result types,
timeouts, heartbeat timeout and retry policy. Workflows call activities only through these
entries (`PLAN_VIDEO.run(req)`), so a name, queue or type mistake is a type error; `worker.py`
registers each queue's implementations from the same table (and refuses a mismatch).

Timeouts follow one rule: anything that can run longer than a few seconds heartbeats and has a
heartbeat timeout of 10-15 s, so a worker that dies mid-activity has its task retried on another
within seconds instead of at the start-to-close timeout; short activities get a short
start-to-close. Imported by workflows through `imports_passed_through`; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, Literal, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

from activities import messages as msg
from t2m.eval.judge import Judgement, JudgeRequest
from t2m.eval.report import EvalResult, ReportRequest
from t2m.vocabulary.job import JobRecord
from t2m.vocabulary.plan import Artifacts, Narration
from t2m.vocabulary.request import VideoRequest

Queue = Literal["llm", "render", "media"]
"""Activity task queues (the workflows' own is `video`); each is `<prefix>-<queue>`."""
QUEUES: tuple[Queue, ...] = ("llm", "render", "media")

A = TypeVar("A")
R = TypeVar("R")

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
    maximum_attempts=10,
)
"""About two and a half minutes of retries: enough for a storage outage or a worker restart."""
CATALOG_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,
)
"""Catalog writes retry while the database is away (checking every 10 s at most), up to
`CATALOG_WINDOW`; errors that cannot heal are raised non-retryable by the activity."""
CATALOG_WINDOW = timedelta(minutes=30)
"""How long a catalog write may keep retrying. After that the job goes on without it: the
reconciler (workflows/maintenance.py) repairs the row from Temporal once the database is back."""
LOOKUP_RETRY = RetryPolicy(maximum_attempts=2)
"""Looking for a reusable result is an optimisation: if the catalog cannot answer, make anew."""

HEARTBEAT = timedelta(seconds=10)
"""Activities on CPU-bound hosts (renders, compose) heartbeat every couple of seconds."""
SLOW_HEARTBEAT = timedelta(seconds=15)
"""Model calls and storage transfers: I/O that may wait on a provider or S3 between beats."""


@dataclass(frozen=True)
class ActivitySpec(Generic[A, R]):
    """One activity: how it is called and what it may take. `run` is the only way workflows
    call it."""

    name: str
    queue: Queue
    arg: type[A]
    result: type[R]
    start_to_close: timedelta
    heartbeat: timedelta | None
    retry: RetryPolicy
    schedule_to_close: timedelta | None = None
    cancellation: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL

    async def run(self, arg: A, *, summary: str | None = None, **options: Any) -> R:
        return await workflow.execute_activity(
            self.name,
            arg,
            result_type=self.result,
            task_queue=queue_name(self.queue),
            start_to_close_timeout=self.start_to_close,
            schedule_to_close_timeout=self.schedule_to_close,
            heartbeat_timeout=self.heartbeat,
            retry_policy=self.retry,
            cancellation_type=self.cancellation,
            summary=summary,
            **options,
        )


def queue_name(queue: Queue) -> str:
    """`llm` → `t2m-llm`: activity queues share the workflow queue's prefix."""
    prefix = workflow.info().task_queue.rsplit("-", 1)[0]
    return f"{prefix}-{queue}"


def _model(name: str, arg: type[A], result: type[R]) -> ActivitySpec[A, R]:
    """A model call: heartbeats while it waits for the provider, so a cancel reaches it."""
    return ActivitySpec(name, "llm", arg, result, timedelta(minutes=5), SLOW_HEARTBEAT, LLM_RETRY)


MINUTE = timedelta(minutes=1)

PLAN_VIDEO = _model("plan_video", VideoRequest, msg.PlanResult)
STORYBOARD_SCENE = _model("storyboard_scene", msg.StoryboardRequest, msg.StoryboardResult)
WRITE_SCENE_CODE = _model("write_scene_code", msg.CodeRequest, msg.CodeResult)
FIX_SCENE_CODE = _model("fix_scene_code", msg.FixRequest, msg.CodeResult)
DOC_QUERIES_FOR_ERROR = _model("doc_queries_for_error", msg.DocQueriesRequest, msg.DocQueriesResult)
CRITIQUE_SCENE = _model("critique_scene", msg.CritiqueRequest, msg.CritiqueResult)
JUDGE_VIDEO = _model("judge_video", JudgeRequest, Judgement)
RETRIEVE_DOCS = ActivitySpec(
    "retrieve_docs", "llm", msg.DocsRequest, str, 2 * MINUTE, SLOW_HEARTBEAT, WORK_RETRY
)
NARRATE_SCENE = ActivitySpec(
    "narrate_scene", "llm", msg.NarrateRequest, Narration, 5 * MINUTE, SLOW_HEARTBEAT, WORK_RETRY
)
RECORD_JOB = ActivitySpec(
    "record_job",
    "llm",
    JobRecord,
    type(None),
    timedelta(seconds=10),  # one row write: a dead worker's attempt is retried within seconds
    None,
    CATALOG_RETRY,
    schedule_to_close=CATALOG_WINDOW,
)
FIND_REUSABLE = ActivitySpec(
    "find_reusable", "llm", VideoRequest, msg.Reusable, timedelta(seconds=10), None, LOOKUP_RETRY
)
COPY_ARTIFACTS = ActivitySpec(
    "copy_artifacts",
    "llm",
    msg.CopyArtifactsRequest,
    Artifacts,
    10 * MINUTE,
    SLOW_HEARTBEAT,
    WORK_RETRY,
)
RECONCILE_CATALOG = ActivitySpec(
    "reconcile_catalog",
    "llm",
    msg.ReconcileRequest,
    msg.ReconcileReport,
    10 * MINUTE,
    SLOW_HEARTBEAT,
    WORK_RETRY,
)
WRITE_EVAL_REPORT = ActivitySpec(
    "write_eval_report", "llm", ReportRequest, EvalResult, 5 * MINUTE, SLOW_HEARTBEAT, WORK_RETRY
)
RENDER_SCENE = ActivitySpec(
    "render_scene",
    "render",
    msg.RenderRequest,
    msg.RenderOutcome,
    20 * MINUTE,
    HEARTBEAT,
    WORK_RETRY,
    # The jail is killed before the activity reports cancelled: no render outlives its job.
    cancellation=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
)
PLAN_RENDER = ActivitySpec(
    "plan_render", "render", msg.RenderRequest, msg.RenderPlan, 10 * MINUTE, HEARTBEAT, WORK_RETRY
)
"""The dry pass of a split render (`activities/split.py`)."""
JOIN_RENDERS = ActivitySpec(
    "join_renders",
    "media",
    msg.JoinRequest,
    msg.RenderOutcome,
    20 * MINUTE,
    HEARTBEAT,
    WORK_RETRY,
    cancellation=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
)
COMPOSE_VIDEO = ActivitySpec(
    "compose_video",
    "media",
    msg.ComposeRequest,
    msg.ComposeResult,
    20 * MINUTE,
    HEARTBEAT,
    WORK_RETRY,
    cancellation=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
)
MAKE_THUMBNAIL = ActivitySpec(
    "make_thumbnail", "media", msg.ThumbnailRequest, str, 2 * MINUTE, HEARTBEAT, WORK_RETRY
)
FINALIZE_VIDEO = ActivitySpec(
    "finalize_video", "media", msg.FinalizeRequest, int, 10 * MINUTE, SLOW_HEARTBEAT, WORK_RETRY
)

ACTIVITIES: tuple[ActivitySpec[Any, Any], ...] = (
    PLAN_VIDEO,
    STORYBOARD_SCENE,
    WRITE_SCENE_CODE,
    FIX_SCENE_CODE,
    DOC_QUERIES_FOR_ERROR,
    CRITIQUE_SCENE,
    JUDGE_VIDEO,
    RETRIEVE_DOCS,
    NARRATE_SCENE,
    RECORD_JOB,
    FIND_REUSABLE,
    COPY_ARTIFACTS,
    RECONCILE_CATALOG,
    WRITE_EVAL_REPORT,
    RENDER_SCENE,
    PLAN_RENDER,
    JOIN_RENDERS,
    COMPOSE_VIDEO,
    MAKE_THUMBNAIL,
    FINALIZE_VIDEO,
)
"""The whole table: `worker.py` serves each queue with exactly these names."""


def on_queue(queue: Queue) -> list[str]:
    """The names of the activities a worker of `queue` serves."""
    return [a.name for a in ACTIVITIES if a.queue == queue]
