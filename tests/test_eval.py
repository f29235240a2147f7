"""`t2m eval`: topics made into real videos and reported on, judged by a (scripted) model; the
eval's own logic on faked video activities; its Temporal Schedule; its refusals of bad input."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.exceptions import ApplicationError, CancelledError

from activities.catalog import CatalogActivities
from activities.eval import EvalActivities
from activities.messages import RenderOutcome
from t2m.authoring.llm import ModelClient
from t2m.catalog.db import JobStore
from t2m.catalog.storage import LocalStorage
from t2m.config import Settings
from t2m.eval.judge import AXES, Judgement, JudgeRequest, JudgeScores, judge_video
from t2m.eval.report import EvalResult
from t2m.eval.runs import EvalItem, EvalRequest
from t2m.eval.topics import (
    MAX_TOPIC_FILE_BYTES,
    EvalTopic,
    TopicFileError,
    load_topics,
    parse_topics,
)
from t2m.vocabulary.request import VideoRequest
from tests.fakes import Fakes, running
from tests.helpers import cli_env, run_cli
from tests.scripted import ScriptedLLM
from tests.test_temporal_ui import current_details
from workflows.eval import EvalWorkflow, ensure_eval_schedule
from workflows.video import VideoWorkflow

TOPICS = [
    {"theorem": "Ideal Gas Law", "description": "For an ideal gas PV = nRT.",
     "difficulty": "easy", "subfield": "thermodynamics"},
    {"topic": "Binary Search", "context": "Each step halves the sorted range."},
    {"theorem": "Euler's Polyhedron Formula", "description": "A cube has V - E + F = 2."},
]  # fmt: skip


def scores(score: int, reason: str = "clear") -> str:
    answer = {axis: {"score": score, "reason": f"{reason} {axis}"} for axis in AXES}
    return "```json\n" + json.dumps(answer) + "\n```"


async def test_eval_reports_real_videos_with_the_judges_five_scores(
    settings: Settings, worker: None, scripted: ScriptedLLM, jobs: JobStore, client: Client,
    tmp_path: Path,
) -> None:  # fmt: skip
    topics = tmp_path / "three.json"
    topics.write_text(json.dumps(TOPICS))
    judged: list[dict] = []

    def judge(task: str, data: dict) -> str | None:
        if task != "judge_video":
            return None
        judged.append(data)
        return scores(len(judged) + 2)

    scripted.handler = judge
    args = ["eval", str(topics), "--quality", "low", "--judge", "scripted/judge"]
    code, out, err = await run_cli(cli_env(settings), *args, "--out", str(tmp_path), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["topics"], result["completed"], result["success_rate"]) == (3, 3, 1.0)
    assert result["judged"] == 3 and set(result["mean_scores"]) == set(AXES)
    report = json.loads(Path(result["report_json"]).read_text())
    md = Path(result["report_markdown"]).read_text()
    assert Path(result["report_json"]).name == f"{result['eval_id']}.json"
    assert [t["theorem"] for t in report["topics"]] == [
        t.get("theorem") or t["topic"] for t in TOPICS
    ]
    # the judge saw each video's transcript (its real subtitles) and four frames of it
    assert sorted(d["theorem"] for d in judged) == sorted(t["theorem"] for t in report["topics"])
    assert any("halves the sorted range" in d["transcript"] for d in judged)
    assert scripted.images[-3:] == [4, 4, 4] and {d["frames"] for d in judged} == {4}
    for t in report["topics"]:
        assert t["status"] == "completed" and t["duration_s"] > 3 and t["wall_s"] > 0
        assert t["scenes"] >= 3 and t["renders"] >= t["scenes"] and t["fix_attempts"] >= 0
        assert set(t["scores"]) == set(AXES) and t["judge_error"] is None
        assert all(1 <= s["score"] <= 5 and s["reason"] for s in t["scores"].values())
        assert t["usage"]["calls"] > 0  # the videos' model calls and the judge's
        row = await jobs.get(t["job_id"])  # an ordinary job with its own catalog row
        assert row is not None and row.owner == "eval" and row.status == "completed"
        priority = (await client.get_workflow_handle(t["job_id"]).describe()).raw_description
        info = priority.workflow_execution_info.priority
        assert (info.priority_key, info.fairness_key) == (5, "eval")
    assert report["topics"][0]["subfield"] == "thermodynamics"
    assert "| Ideal Gas Law | completed |" in md and "accuracy & depth" in md
    assert md.count("— clear") == 3 * len(AXES)


def _item(theorem: str, quality: str = "low") -> EvalItem:
    request = VideoRequest(topic=theorem, model="fake/model", quality=quality, owner="eval")
    return EvalItem(topic=EvalTopic(theorem=theorem, description="x."), request=request)


async def test_a_failed_video_or_judge_is_a_topic_without_scores_not_a_failed_eval(
    client: Client, tmp_path: Path
) -> None:
    @activity.defn(name="judge_video")
    async def fake_judge(req: JudgeRequest) -> Judgement:
        if req.topic.theorem == "Unjudgeable":
            raise ApplicationError("the judge is down", non_retryable=True)
        return Judgement(scores=JudgeScores.model_validate_json(scores(4).strip("`json\n")))

    storage = LocalStorage(tmp_path / "storage")
    evals = EvalActivities(ModelClient(), storage, jobs=None, temporal=client)  # status: queried
    fakes = Fakes(
        render=lambda r: RenderOutcome(ok=r.quality != "high", error="boom", video_key="k.mp4"),
        catalog=[CatalogActivities(None).record_job, fake_judge, evals.write_eval_report],
    )  # the eval's activities ride with the (no-op) real catalog on the llm queue
    req = EvalRequest(
        name="logic",
        items=[_item("Fine"), _item("Broken", quality="high"), _item("Unjudgeable")],
        judge_model="fake/judge",
    )
    async with running(client, fakes, workflows=(VideoWorkflow, EvalWorkflow)) as queue:
        handle = await client.start_workflow(
            EvalWorkflow.run, req, id=f"eval-{uuid.uuid4()}", task_queue=queue
        )
        result = await handle.result()
        details = await current_details(handle)  # what the Web UI shows of the eval
    assert details.startswith("**3 of 3 topics done**") and "- failed: Broken (`video-" in details
    assert (result.overall.completed, result.overall.judged) == (2, 1)
    assert result.overall.success_rate == pytest.approx(2 / 3, abs=1e-4)
    assert result.json_key == f"eval/{handle.id}/report.json"
    report = json.loads(storage.path(result.json_key).read_text())
    fine, broken, unjudged = report["topics"]
    assert fine["scores"]["logical_flow"]["score"] == 4 and fine["fix_attempts"] == 0
    assert broken["status"] == "failed" and "did not render" in broken["error"]
    assert broken["fix_attempts"] == 2 * 2 and broken["scores"] is None  # 2 scenes, 3 renders each
    assert unjudged["scores"] is None and "the judge is down" in unjudged["judge_error"]
    assert report["overall"]["fix_attempts"] == 4 and report["overall"]["cost_usd"] > 0
    md = storage.path(result.markdown_key).read_text()
    assert "not judged: the judge failed" in md and "| Broken | failed |" in md


async def test_a_cancelled_eval_ends_cancelled_with_its_videos_and_writes_no_report(
    client: Client, tmp_path: Path
) -> None:
    """Ctrl-C on `t2m eval` (or a cancel in the Web UI) stops the eval: its videos are cancelled,
    nothing is judged or reported, and the eval itself ends cancelled, not completed."""
    storage = LocalStorage(tmp_path / "storage")
    evals = EvalActivities(ModelClient(), storage, jobs=None, temporal=client)
    fakes = Fakes(catalog=[CatalogActivities(None).record_job, evals.write_eval_report])
    fakes.render_delay_s = 2.0
    req = EvalRequest(name="stopped", items=[_item("First"), _item("Second")])
    async with running(client, fakes, workflows=(VideoWorkflow, EvalWorkflow)) as queue:
        handle = await client.start_workflow(
            EvalWorkflow.run, req, id=f"eval-{uuid.uuid4()}", task_queue=queue
        )
        for _ in range(200):
            if fakes.calls["render_scene"]:
                break
            await asyncio.sleep(0.05)
        progress = await handle.query(EvalWorkflow.progress)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        children = [
            (await client.get_workflow_handle(job_id).describe()).status for job_id in progress.jobs
        ]
    assert isinstance(failed.value.cause, CancelledError)
    assert children == [WorkflowExecutionStatus.CANCELED] * 2
    assert not storage.exists(f"eval/{handle.id}/report.json")


async def test_the_schedule_runs_the_eval_it_was_given(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "storage")
    evals = EvalActivities(ModelClient(), storage, jobs=None, temporal=client)
    fakes = Fakes(catalog=[CatalogActivities(None).record_job, evals.write_eval_report])
    req = EvalRequest(name="nightly", items=[_item("Scheduled")])
    async with running(client, fakes, workflows=(VideoWorkflow, EvalWorkflow)) as queue:
        prefix = settings.model_copy(update={"task_queue_prefix": queue.removesuffix("-video")})
        schedule = client.get_schedule_handle(
            await ensure_eval_schedule(client, prefix, req, "0 3 * * *")
        )
        try:
            await schedule.trigger()
            for _ in range(100):
                if actions := (await schedule.describe()).info.recent_actions:
                    break
                await asyncio.sleep(0.1)
            started = actions[0].action
            assert isinstance(started, ScheduleActionExecutionStartWorkflow)
            run_id = started.workflow_id
            result = await client.get_workflow_handle(run_id, result_type=EvalResult).result()
        finally:
            await schedule.delete()
    assert run_id.startswith(f"{schedule.id}-") and result.eval_id == run_id
    assert result.overall.completed == 1 and storage.exists(f"eval/{run_id}/report.md")


async def test_a_judge_answer_out_of_format_leaves_the_scores_out(scripted: ScriptedLLM) -> None:
    topic = EvalTopic(theorem="Ideal Gas Law", description="PV = nRT.")
    for answer, why in (
        ("Looks great!", "not the five scores"),
        (scores(6), "accuracy_depth.score: Input should be less than or equal to 5"),
        (scores(3).replace('"reason": "clear accuracy_depth"', '"reason": " "'), "reason"),
        (scores(3).replace("}}", '}, "humour": 5}'), "humour: Extra inputs are not permitted"),
    ):
        scripted.handler = lambda task, data, answer=answer: answer  # type: ignore[misc]
        judged = await judge_video(ModelClient(), "scripted/judge", topic, "PV = nRT.", [])
        assert judged.scores is None and why in (judged.error or ""), judged.error
    scripted.handler = lambda task, data: scores(5)
    judged = await judge_video(ModelClient(), "scripted/judge", topic, "PV = nRT.", [])
    assert judged.scores is not None and judged.scores.element_layout.score == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "must be a JSON list of 1 to 100 topic objects"),
        ('[{"theorem": "Ideal gas"}]', "entry 1 of 1 ('Ideal gas'): description (or context): Field required"),
        ('[{"theorem": "Good", "context": ""}, {"topic": "ab", "context": ""}]',
         "entry 2 of 2 ('ab'): topic: String should have at least 3 characters"),
        ('[{"theorem": "Good one", "description": "x", "difficulty": 3}]', "difficulty: Input should be a valid string"),
        ('{"theorem": 1', "not JSON"),
    ],
)  # fmt: skip
def test_a_bad_topic_file_is_named_by_entry_and_field(text: str, message: str) -> None:
    with pytest.raises(TopicFileError) as e:
        parse_topics(text, "t.json")
    assert str(e.value).startswith("t.json: ") and message in str(e.value)
    assert "\n" not in str(e.value)


def test_a_topic_file_is_read_up_to_its_limit_only(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps(TOPICS[:1]) + " " * MAX_TOPIC_FILE_BYTES)
    with pytest.raises(TopicFileError, match="larger than 8 MiB"):
        load_topics(huge)
    with pytest.raises(TopicFileError, match="larger than 8 MiB"):
        load_topics(Path("/dev/zero"))  # endless: read up to the limit, not to the end


async def test_schedule_registers_the_eval_in_temporal_and_bad_input_exits_2(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    env = cli_env(settings)
    topics = tmp_path / "nightly.json"
    topics.write_text(json.dumps(TOPICS[:2]))
    sid = f"{settings.task_queue_prefix}-eval-nightly"
    code, out, err = await run_cli(env, "eval", str(topics), "--schedule", "0 3 * * *", "--json")
    try:
        assert code == 0, err
        assert json.loads(out)["schedule_id"] == sid
        desc = await client.get_schedule_handle(sid).describe()
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "EvalWorkflow" and action.task_queue == settings.queue("video")
        assert (action.priority.priority_key, action.priority.fairness_key) == (5, "eval")
        assert desc.info.next_action_times and all(
            (t.hour, t.minute) == (3, 0) for t in desc.info.next_action_times
        )
        # registering again replaces it (another cron), still one schedule
        code, out, err = await run_cli(env, "eval", str(topics), "--schedule", "30 4 * * *")
        assert code == 0 and sid in out, err
        desc = await client.get_schedule_handle(sid).describe()
        assert {(t.hour, t.minute) for t in desc.info.next_action_times} == {(4, 30)}
    finally:
        await client.get_schedule_handle(sid).delete()
    code, out, err = await run_cli(env, "eval", str(topics), "--schedule", "every tuesday")
    assert code == 2 and "--schedule 'every tuesday'" in err and err.count("\n") == 1
    topics.write_text('[{"theorem": "Ideal gas", "context": "PV = nRT."}, {"theorem": "x"}]')
    code, out, err = await run_cli(env, "eval", str(topics), "--json")
    assert code == 2 and err.count("\n") == 1
    assert "entry 2 of 2 ('x'): theorem (or topic): String should have at least 3 characters" in err
    assert "entry 2" in json.loads(out)["error"]
