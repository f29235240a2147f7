"""Budgets: a job whose model calls reach `max_cost_usd` stops asking the model.

The model is the scripted provider with a price per token registered in litellm, answered by the
real model activities (`LLMActivities` over `ModelClient`, which prices each call) in this
process's worker; renders and the rest are faked by name on the real Temporal dev server.
"""

from __future__ import annotations

import contextlib
import io
import re
import uuid
from pathlib import Path

import litellm
import pytest
from pydantic import ValidationError
from temporalio.client import Client, WorkflowFailureError

from activities.llm import LLMActivities
from activities.messages import RenderOutcome, RenderRequest
from api.service import budget_of, progress_of
from cli.jobs import describe
from cli.progress import ProgressView
from t2m.authoring.llm import ModelClient
from t2m.budget import usd
from t2m.catalog.storage import LocalStorage
from t2m.config import Settings
from t2m.requests import InvalidRequest, build_request
from t2m.vocabulary.job import JobStatus
from t2m.vocabulary.request import VideoOptions, VideoRequest
from tests.fakes import Fakes, running
from tests.helpers import asgi_client, cli_env, run_cli
from tests.scripted import ScriptedLLM, plan_json
from workflows import ui
from workflows.video import VideoWorkflow

PAID = "scripted/paid"
BUDGET = 0.1


@pytest.fixture
def paid(scripted: ScriptedLLM) -> ScriptedLLM:
    """The scripted model, priced per token like a real one; it plans three scenes."""
    litellm.register_model(
        {
            PAID: {
                "input_cost_per_token": 2e-6,
                "output_cost_per_token": 1e-5,
                "litellm_provider": "scripted",
                "mode": "chat",
            }
        }
    )
    scripted.handler = lambda task, data: (
        plan_json("One", "Two", "Three") if task == "plan_video" else None
    )
    return scripted


async def run_paid(client: Client, tmp_path: Path, render: Fakes) -> JobStatus:
    models = LLMActivities(ModelClient(None), LocalStorage(tmp_path), tmp_path)
    render.models = models.all()
    req = VideoRequest(topic="Circles", model=PAID, max_fix_attempts=10, max_cost_usd=BUDGET)
    async with running(client, render) as queue:
        handle = await client.start_workflow(
            VideoWorkflow.run, req, id=f"video-{uuid.uuid4()}", task_queue=queue
        )
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        return await handle.query(VideoWorkflow.status)


def spend_is_booked(status: JobStatus, paid: ScriptedLLM, fakes: Fakes) -> None:
    """Every call the model answered is booked and priced, and the catalog row says the same."""
    assert sum(u.calls for u in status.usage.values()) == len(paid.prompts)
    assert status.spent_usd == pytest.approx(sum(u.cost_usd for u in status.usage.values()))
    assert status.max_cost_usd == BUDGET and status.spent_usd >= BUDGET
    assert fakes.records[-1].progress.spent_usd == status.spent_usd  # what the API shows later


async def test_an_always_failing_scene_stops_at_the_budget(
    client: Client, tmp_path: Path, paid: ScriptedLLM
) -> None:
    fakes = Fakes(render=lambda r: RenderOutcome(ok=False, error="NameError: name 'Circel'"))
    status = await run_paid(client, tmp_path, fakes)
    spend_is_booked(status, paid, fakes)
    fixes = len(paid.prompts_for("fix_scene_code"))
    assert 0 < fixes < 3 * 9, "without the budget, each scene would be fixed 9 times"
    assert fakes.calls["render_scene"] == fixes + 3
    fix = status.usage["fixing"]  # past the budget only by the calls in flight, one per scene:
    assert status.spent_usd < BUDGET + 3 * 2 * fix.cost_usd / fix.calls
    assert status.status == "failed" and status.retryable is False  # resubmit with more budget
    found = re.match(
        r"BudgetReached: budget of \$0\.10 reached after \$(0\.\d+) spent:"
        r" scene [123] \('(One|Two|Three)'\) did not render after \d+ attempts: NameError",
        status.error or "",
    )
    assert found, status.error
    assert BUDGET <= float(found[1]) <= status.spent_usd + 5e-5  # shown to 4 decimals
    budget = budget_of(status)
    assert budget is not None and budget.reached
    assert budget.spent_usd == round(status.spent_usd, 6) and len(repr(budget.spent_usd)) <= 8
    answer = {"job_id": "j", "status": "failed", "progress": progress_of(status).model_dump()}
    line = describe(answer | {"budget": budget.model_dump()})  # t2m jobs status
    assert line.startswith("j: failed, ") and f"%, spent {usd(status.spent_usd)} of $0.10" in line
    view = ProgressView(status.job_id, stream=io.StringIO())
    with view:  # a line per change while it runs (the end is the command's own line)
        view.update(status.model_copy(update={"status": "running"}))
    shown = view.console.file.getvalue()  # type: ignore[attr-defined]
    assert f"{usd(status.spent_usd)} of $0.10 spent" in shown
    details = ui.current_details(status)  # dollars without "$", which the UI takes for math
    assert f"model calls: {usd(status.spent_usd)[1:]} of 0.10 USD spent" in details
    assert "$" not in details.splitlines()[0]


async def test_a_scene_keeps_its_last_good_render_when_the_budget_ends_its_fixes(
    client: Client, tmp_path: Path, paid: ScriptedLLM
) -> None:
    first: dict[int, str] = {}

    def render(r: RenderRequest) -> RenderOutcome:
        """The first code of a scene renders (with a layout finding); every fix breaks it."""
        if first.setdefault(r.scene_index, r.code) == r.code:
            return RenderOutcome(
                ok=True, video_key=f"good-{r.scene_index}.mp4", layout_issues=["x"]
            )
        return RenderOutcome(ok=False, error="TypeError")

    fakes = Fakes(render=render)
    status = await run_paid(client, tmp_path, fakes)
    spend_is_booked(status, paid, fakes)
    assert status.status == "completed", status.error
    assert len(paid.prompts_for("fix_scene_code")) < 3 * 9
    checkpoint = fakes.records[-1].checkpoint
    assert checkpoint is not None
    assert {i: m.video_key for i, m in checkpoint.scenes.items()} == {
        i: f"good-{i}.mp4" for i in range(3)
    }
    assert [s.layout_issues for s in status.scenes] == [["x"]] * 3


def test_the_budget_comes_from_the_request_the_default_or_the_ceiling(tmp_path: Path) -> None:
    def budget(asked: float | None, **configured: float) -> float | None:
        settings = Settings(data_dir=tmp_path, **configured)  # type: ignore[arg-type]
        options = VideoOptions(topic="Circles", voice="none", max_cost_usd=asked)
        return build_request(settings, options, "u").max_cost_usd

    assert budget(None) is None and budget(3.0) == 3.0
    assert budget(None, default_max_cost_usd=0.2, max_cost_usd_ceiling=1.0) == 0.2
    assert budget(None, max_cost_usd_ceiling=1.0) == 1.0
    assert budget(0.7, default_max_cost_usd=0.2, max_cost_usd_ceiling=1.0) == 0.7
    with pytest.raises(InvalidRequest, match="max_cost_usd: must be at most 1.0"):
        budget(1.5, max_cost_usd_ceiling=1.0)
    with pytest.raises(ValidationError, match="T2M_DEFAULT_MAX_COST_USD .* is above"):
        Settings(data_dir=tmp_path, default_max_cost_usd=2.0, max_cost_usd_ceiling=1.0)


@pytest.mark.parametrize("settings", [{"max_cost_usd_ceiling": 0.5}], indirect=True)
async def test_a_budget_above_the_ceiling_is_a_422_and_cli_exit_2(settings: Settings) -> None:
    async with asgi_client(settings) as http:
        for asked, rule in (
            (2, "must be at most 0.5"),
            (0, "greater than 0"),
            (-1, "greater"),
            ("0.4", "valid number"),  # a number, not a string that looks like one
            (True, "valid number"),
        ):
            body = {"configuration": {"topic": "Circles", "max_cost_usd": asked}}
            r = await http.post("/api/v1/videos/generate", json=body)
            assert r.status_code == 422
            [problem] = r.json()["detail"]
            assert problem["loc"] == ["body", "configuration", "max_cost_usd"]
            assert rule in problem["msg"]
    env = cli_env(settings, T2M_MAX_COST_USD_CEILING="0.5")
    code, _, err = await run_cli(env, "generate", "Circles", "--max-cost-usd", "2")
    assert code == 2
    assert err.strip() == (
        "t2m: failed: invalid request: max_cost_usd: must be at most 0.5 (the configured"
        " ceiling, T2M_MAX_COST_USD_CEILING), not 2.0"
    )
