"""Today's workflow code (the worker's `WORKFLOWS`) replays the histories of representative runs
recorded with the real pipeline (tests/histories/, re-recorded by `make histories`), with the
project's data converter: a change that would strand running jobs with a nondeterminism error
fails here first. And the replayer does catch such a change (a workflow that adds an activity
call at its start, the everyday mistake), so this test can fail."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from t2m.vocabulary.job import VideoResult
from t2m.vocabulary.request import VideoRequest
from tests.histories.scenarios import SCENARIOS
from worker import WORKFLOWS
from workflows.video import VideoWorkflow

HISTORIES = Path(__file__).parent / "histories"
INDEX: dict[str, dict[str, str]] = json.loads((HISTORIES / "index.json").read_text())


def recorded(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(
        INDEX[name]["workflow_id"], (HISTORIES / f"{name}.json").read_text()
    )


def test_every_recorded_history_is_indexed_and_every_scenario_recorded() -> None:
    files = {p.stem for p in HISTORIES.glob("*.json")} - {"index"}
    assert files == set(INDEX), "re-record with `make histories`"
    recorded_types = {entry["workflow_type"] for entry in INDEX.values()}
    assert {w.__name__ for w in WORKFLOWS} <= recorded_types, "a workflow without a history"
    assert {"plain", "fixes_layout_critique_rag", "regenerate_in_run", "cancelled",
            "budget_stop", "resumed_retry", "next_version", "eval", "reconcile", "reused",
            "split", "status_memo"} <= files  # fmt: skip
    assert set(SCENARIOS) == {
        "plain", "reused", "next_version", "fixes", "regenerate_in_run", "cancelled", "budget_stop",
        "resumed_retry", "eval", "reconcile", "split", "status_memo",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(INDEX))
async def test_todays_workflows_replay_the_recorded_history(name: str) -> None:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(recorded(name), raise_on_replay_failure=False)
    assert result.replay_failure is None, (
        f"{name}: today's workflow code does not replay a run it recorded: {result.replay_failure}"
        "\nA job running on the old code would be stranded. Put the change behind Worker"
        " Versioning or `workflow.patched` (README, 'Changing workflow code'); if old runs"
        " cannot exist, re-record with `make histories`."
    )


@workflow.defn(name="VideoWorkflow", sandboxed=False)
class VideoWorkflowWithAnAddedStep(VideoWorkflow):
    """The realistic mistake: one activity call added at the start, no versioning."""

    @workflow.run
    async def run(self, req: VideoRequest) -> VideoResult:
        await workflow.execute_activity(
            "find_reusable", req, start_to_close_timeout=timedelta(seconds=10)
        )
        return await super().run(req)


@workflow.defn(name="VideoWorkflow", sandboxed=False)
class VideoWorkflowRefactored(VideoWorkflow):
    """The control: the same class the same way (unsandboxed subclass), no new command."""

    @workflow.run
    async def run(self, req: VideoRequest) -> VideoResult:
        return await super().run(req)


async def test_the_replayer_catches_an_activity_added_without_the_rule() -> None:
    def replayer(cls: type) -> Replayer:
        return Replayer(workflows=[cls], data_converter=pydantic_data_converter)

    await replayer(VideoWorkflowRefactored).replay_workflow(recorded("plain"))
    with pytest.raises(NondeterminismError, match=r"\[TMPRL1100\] Nondeterminism error"):
        await replayer(VideoWorkflowWithAnAddedStep).replay_workflow(recorded("plain"))


async def test_the_replayer_catches_an_edited_history() -> None:
    """On a copy of a recorded history: the first activity scheduled under another name."""
    history = recorded("plain")
    edited = WorkflowHistory(history.workflow_id, [type(e)() for e in history.events])
    for copy, event in zip(edited.events, history.events, strict=True):
        copy.CopyFrom(event)
    first = next(
        e for e in edited.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )
    first.activity_task_scheduled_event_attributes.activity_type.name = "renamed_activity"
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    with pytest.raises(NondeterminismError, match="renamed_activity"):
        await replayer.replay_workflow(edited)
    await replayer.replay_workflow(history)  # the original is untouched and still replays
