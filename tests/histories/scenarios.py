"""The runs `make histories` records (tests/histories/record.py): one per branch of the workflows
that a change could break, each small (low quality, 3 short scenes: the fewest a plan may have)
and checked to have taken the branch it is named for. Scenarios run one after another, in this
order (the reuse, the next version and the resumed retry continue earlier jobs; reconcile repairs
rows the earlier ones left)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from typing import Any

import litellm
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy

from activities.messages import ReconcileReport, ReconcileRequest
from api.service import request_of
from t2m.eval.judge import AXES
from t2m.eval.report import EvalResult
from t2m.eval.runs import EvalItem, EvalRequest
from t2m.eval.topics import EvalTopic
from t2m.vocabulary.job import JobRecord, JobStatus
from t2m.vocabulary.request import Regeneration, VideoRequest
from tests.helpers import catalog_request
from tests.histories.record import Recorder, Scenario, expect, scheduled
from tests.scripted import plan_json, scene_code
from workflows.client import start_video
from workflows.eval import EvalWorkflow
from workflows.maintenance import ReconcileWorkflow
from workflows.video import VideoWorkflow

SHORT = "self.play(Create(Circle()), run_time=0.5)"
BROKEN = 'self.play(Create(Circle(radius="big")))'  # a code error (TypeError while rendering)
OFF_SCREEN = 'self.play(FadeIn(Text("Way off to the right").shift(RIGHT * 9)))'
NAME_ERROR = "self.play(ShowCreation(Circle()))"
BOARD = '```json\n{"visuals": "a circle", "doc_queries": ["draw a circle"]}\n```'
PRICED = "scripted/priced"
"""The scripted model with a price: output tokens only, so each call's cost follows its answer."""


def scripted_request(topic: str, **overrides: Any) -> VideoRequest:
    fields = {"topic": topic, "model": "scripted/test", "quality": "low", "owner": "replay"}
    return VideoRequest(**(fields | overrides))


def plain_scenes(*titles: str, code: str = SHORT):
    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json(*titles, duration=1.0)
        if task in ("write_scene_code", "fix_scene_code"):
            return scene_code(data["class_name"], code)
        return None

    return handler


async def video(rec: Recorder, req: VideoRequest, job_id: str, **options: Any) -> WorkflowHandle:
    return await start_video(rec.client, rec.settings, req, job_id, **options)


async def wait_status(handle: WorkflowHandle, predicate, timeout: float = 60.0) -> JobStatus:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        with contextlib.suppress(Exception):
            status = await handle.query(VideoWorkflow.status)
            if predicate(status):
                return status
        assert loop.time() < deadline, f"{handle.id}: timed out waiting"
        await asyncio.sleep(0.05)


PLAIN = VideoRequest(
    topic="Why the sky is blue",
    model="offline/templates",
    quality="low",
    owner="replay",
    reuse=True,
)
"""As `t2m generate` asks: the offline model, and a finished identical job's video reused."""


async def plain(rec: Recorder) -> None:
    """A job as `t2m generate` makes it: no identical job yet, so plan, 3 scenes, compose."""
    handle = await video(rec, PLAIN, "video-replay-plain")
    await handle.result()
    history = await rec.save("plain", handle)
    expect(history, "find_reusable", "plan_video", "render_scene", "finalize_video")


async def reused(rec: Recorder) -> None:
    """The same request again: answered from the whole-result cache, the artifacts copied."""
    handle = await video(rec, PLAIN, "video-replay-reused")
    await handle.result()
    history = await rec.save("reused", handle)
    expect(history, "find_reusable", "copy_artifacts")
    assert "plan_video" not in scheduled(history), scheduled(history)


async def next_version(rec: Recorder) -> None:
    """A finished job's scene regenerated: a new run with `regenerate` and `resume` in its
    request (as api/routes/regenerate.py starts it); only that scene is made again."""
    row = await rec.jobs.get("video-replay-plain")
    assert row is not None and row.artifacts is not None and row.checkpoint is not None
    again = Regeneration(index=1, feedback="slower, please", previous=row.artifacts)
    req = row.request.model_copy(update={"resume": row.checkpoint, "regenerate": again})
    await rec.jobs.requeue(row.id)
    handle = await video(rec, req, row.id, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
    result = await handle.result()
    assert result.artifacts.version == 2
    history = await rec.save("next_version", handle)
    expect(history, "render_scene", "compose_video")
    assert "plan_video" not in scheduled(history) and scheduled(history).count("render_scene") == 1


async def fixes(rec: Recorder) -> None:
    """Every fix branch in one scene: a code error, a layout finding, a vision critique; with
    RAG, so docs are retrieved and the fixer's doc queries written."""
    fixed: Counter[int] = Counter()
    critiqued: set[int] = set()

    def handler(task: str, data: dict) -> str | None:
        index = data.get("scene", {}).get("index")
        if task == "plan_video":
            return plan_json(
                "Broken, off screen, then criticised", "Fine", "Also fine", duration=1.0
            )
        if task == "storyboard_scene":
            return BOARD
        if task == "write_scene_code":
            return scene_code(data["class_name"], BROKEN if index == 0 else SHORT)
        if task == "fix_scene_code":
            fixed[index] += 1
            return scene_code(data["class_name"], OFF_SCREEN if fixed[index] == 1 else SHORT)
        if task == "critique_scene":
            if index == 0 and index not in critiqued:
                critiqued.add(index)
                return "The circle is too small to see; make it fill half the frame."
            return "OK"
        return None

    rec.llm.handler = handler
    req = scripted_request(
        "Fix rounds", vision_model="scripted/vision", use_rag=True, max_fix_attempts=4
    )
    handle = await video(rec, req, "video-replay-fixes")
    await handle.result()
    status = await handle.query(VideoWorkflow.status)
    assert [s.attempts for s in status.scenes] == [4, 1, 1], status.scenes
    history = await rec.save("fixes_layout_critique_rag", handle)
    expect(history, "fix_scene_code", "critique_scene", "retrieve_docs", "doc_queries_for_error")
    errors = [d["error"].split(":")[0] for d, _ in rec.llm.prompts_for("fix_scene_code")]
    critique = "Reviewer's critique of frames from the render"
    assert errors[1:] == ["Layout check", critique], errors  # the first: the code error


async def regenerate_in_run(rec: Recorder) -> None:
    """The `regenerate_scene` Update on a running job: scene 1 made again with feedback."""
    rec.llm.handler = plain_scenes("One", "Two", "Three")
    handle = await video(rec, scripted_request("In-run regenerate"), "video-replay-update")
    await wait_status(handle, lambda s: bool(s.scenes))
    accepted = await handle.execute_update(VideoWorkflow.regenerate_scene, args=[1, "bigger"])
    assert accepted.index == 1  # answered at acceptance; the redo runs beside the scenes
    await handle.result()
    history = await rec.save("regenerate_in_run", handle)
    expect(history, events=(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,))
    assert scheduled(history).count("render_scene") == 4


async def cancelled(rec: Recorder) -> None:
    """A job cancelled while its scenes render: the renders are cancelled, the row written."""
    rec.llm.handler = plain_scenes("Long", "Longer", "Longest", code="self.wait(900)")
    handle = await video(rec, scripted_request("Cancelled"), "video-replay-cancelled")
    await wait_status(handle, lambda s: any(sc.state == "rendering" for sc in s.scenes))
    await asyncio.sleep(1.0)
    await handle.cancel()
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    history = await rec.save("cancelled", handle)
    expect(history, events=(EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,))


async def budget_stop(rec: Recorder) -> None:
    """`max_cost_usd` reached inside a scene's fix loop: the next fix is refused, the job fails
    with BudgetReached. Answers are short except the fixes (~$1 each), so the budget of $1.50
    allows exactly two fixes whatever the prompts say."""
    litellm.register_model(
        {
            PRICED: {
                "input_cost_per_token": 0.0,
                "output_cost_per_token": 1e-3,
                "litellm_provider": "scripted",
                "mode": "chat",
            }
        }
    )

    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("Always broken", "Fine", "Also fine", duration=1.0)
        if task == "storyboard_scene":
            return BOARD
        if task == "write_scene_code":
            return scene_code(
                data["class_name"], NAME_ERROR if data["scene"]["index"] == 0 else SHORT
            )
        if task == "fix_scene_code":
            return scene_code(data["class_name"], f"{NAME_ERROR}  # {'x' * 4000}")
        return None

    rec.llm.handler = handler
    req = scripted_request("Budget", model=PRICED, max_fix_attempts=6, max_cost_usd=1.5)
    handle = await video(rec, req, "video-replay-budget")
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    status = await handle.query(VideoWorkflow.status)
    assert status.status == "failed" and "budget" in (status.error or "").lower(), status
    history = await rec.save("budget_stop", handle)
    assert scheduled(history).count("fix_scene_code") == 2, scheduled(history)


async def resumed_retry(rec: Recorder) -> None:
    """A job whose scene never renders fails (kept: `failed_scene`); its retry resumes from the
    checkpoint (`resume` in the request, as api/service.py `request_of` builds it)."""
    fixed = {"now": False}

    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("Fine", "Hopeless until retried", "Also fine", duration=1.0)
        if task in ("write_scene_code", "fix_scene_code"):
            broken = data["scene"]["index"] == 1 and not fixed["now"]
            return scene_code(data["class_name"], NAME_ERROR if broken else SHORT)
        return None

    rec.llm.handler = handler
    job = "video-replay-retry"
    handle = await video(rec, scripted_request("Retry", max_fix_attempts=2), job)
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    expect(await rec.save("failed_scene", handle), "fix_scene_code")
    row = await rec.jobs.get(job)
    assert row is not None and row.status == "failed" and row.checkpoint is not None
    assert sorted(row.checkpoint.scenes) == [0, 2]
    fixed["now"] = True
    await rec.jobs.requeue(job)
    retry = await video(
        rec, request_of(row), job, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE
    )
    await retry.result()
    history = await rec.save("resumed_retry", retry)
    assert "plan_video" not in scheduled(history)
    assert scheduled(history).count("render_scene") == 1


def judge_scores(task: str, data: dict) -> str | None:
    if task == "judge_video":
        answer = {axis: {"score": 4, "reason": f"clear {axis}"} for axis in AXES}
        return "```json\n" + json.dumps(answer) + "\n```"
    return plain_scenes("Halving", "Again", "Found")(task, data)


async def eval_run(rec: Recorder) -> None:
    """An EvalWorkflow: one topic as a child VideoWorkflow (kept: `eval_child_video`), judged by
    a (scripted) model, then the report."""
    rec.llm.handler = judge_scores
    topic = EvalTopic(theorem="Binary Search", description="Each step halves the sorted range.")
    item = EvalItem(topic=topic, request=scripted_request("Binary Search", owner="eval"))
    req = EvalRequest(name="replay", items=[item], judge_model="scripted/judge")
    handle = await rec.client.start_workflow(
        EvalWorkflow.run, req, id="eval-replay", task_queue=rec.settings.queue("video")
    )
    result: EvalResult = await handle.result()
    assert result.overall.completed == 1 and result.overall.judged == 1, result.overall
    history = await rec.save("eval", handle)
    expect(history, "judge_video", "write_eval_report")
    [child] = [
        e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
    ]
    await rec.save("eval_child_video", rec.client.get_workflow_handle(child))


async def reconcile(rec: Recorder) -> None:
    """A ReconcileWorkflow repairing two rows: one left running for a completed job, one for a
    job whose workflow never started."""
    done = await rec.jobs.get("video-replay-update")
    assert done is not None and done.status == "completed"
    status = JobStatus(job_id=done.id, status="running", percentage=95.0)
    await rec.jobs.record(
        JobRecord(
            job_id=done.id, owner=done.owner, request=done.request, status="running",
            progress=status,
        )
    )  # fmt: skip
    await rec.jobs.create("video-replay-never-started", catalog_request("replay"), "normal")
    handle = await rec.client.start_workflow(
        ReconcileWorkflow.run,
        ReconcileRequest(grace_s=0),
        id="reconcile-replay",
        task_queue=rec.settings.queue("video"),
    )
    report: ReconcileReport = await handle.result()
    assert report.repaired == {
        done.id: "completed",
        "video-replay-never-started": "failed",
    }, report
    expect(await rec.save("reconcile", handle), "reconcile_catalog")


async def split_render(rec: Recorder) -> None:
    """Medium quality: each scene's dry pass, its ranges on two render slots, their join
    (the recorder splits whatever it can, `split_min_range_s=0`)."""
    code = "\n        ".join([SHORT, "self.play(FadeOut(Circle()), run_time=0.5)", SHORT])
    rec.llm.handler = plain_scenes("One", "Two", "Three", code=code)
    req = scripted_request("Split renders", quality="medium")
    handle = await video(rec, req, "video-replay-split")
    await handle.result()
    history = await rec.save("split", handle)
    expect(history, "plan_render", "render_scene", "join_renders", "finalize_video")


async def status_memo(rec: Recorder) -> None:
    """A job as the code since the status memo runs it: the status upserted into its memo in the
    workflow tasks that change it (the histories recorded before replay without it, behind
    `workflow.patched`)."""
    rec.llm.handler = plain_scenes("One", "Two", "Three")
    handle = await video(rec, scripted_request("Status in the memo"), "video-replay-status-memo")
    await handle.result()
    history = await rec.save("status_memo", handle)
    modified = EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED
    expect(history, "plan_video", "render_scene", "finalize_video", events=(modified,))


SCENARIOS: dict[str, Scenario] = {
    "plain": plain,
    "reused": reused,
    "next_version": next_version,
    "fixes": fixes,
    "regenerate_in_run": regenerate_in_run,
    "cancelled": cancelled,
    "budget_stop": budget_stop,
    "resumed_retry": resumed_retry,
    "eval": eval_run,
    "reconcile": reconcile,
    "split": split_render,
    "status_memo": status_memo,
}
NEEDS = {"reused": {"plain"}, "next_version": {"plain"}, "reconcile": {"regenerate_in_run"}}
"""Scenarios that continue an earlier one's job: `--only` records that one too."""
