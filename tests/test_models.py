"""Real-model behaviour with scripted responses through litellm's custom-provider path: RAG in the
prompts, plan validation, rate limits, bad keys, the response cache, layout and visual checks."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import litellm
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from activities.llm import LLMActivities
from activities.messages import DocsRequest, RenderOutcome
from t2m.authoring import steps as authoring
from t2m.authoring.llm import ModelClient
from t2m.catalog.db import JobStore
from t2m.catalog.storage import LocalStorage
from t2m.config import Settings
from t2m.vocabulary.request import VideoRequest
from tests.fakes import Fakes, running
from tests.scripted import ScriptedLLM, plan_json, scene_code
from workflows.client import job_status, start_video
from workflows.video import VideoWorkflow

OFF_SCREEN = 'self.play(FadeIn(Text("Way off to the right").shift(RIGHT * 9)))'
SHOW_CREATION = "self.play(ShowCreation(Circle()))"
NAME_ERROR = (
    'Traceback (most recent call last):\n  File "scene.py", line 5, in construct\n'
    f"    {SHOW_CREATION}\nNameError: name 'ShowCreation' is not defined"
)


def request(**overrides) -> VideoRequest:
    fields = {"topic": "Circles", "model": "scripted/test", "quality": "low", "voice": None}
    return VideoRequest(**(fields | overrides))


def simple(task: str, data: dict) -> str | None:
    if task == "plan_video":
        return plan_json("One", "Two", "Three", duration=1.5)
    if task == "write_scene_code":
        return scene_code(data["class_name"])
    return None


async def test_docs_reach_the_code_prompt_only_with_rag(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None, jobs: JobStore
) -> None:
    def handler(task: str, data: dict) -> str | None:
        first_scene = data.get("scene", {}).get("index") == 0 and data.get("topic") == "With docs"
        if task == "write_scene_code" and first_scene:
            return scene_code(data["class_name"], 'self.play(Create(Circle(radius="big")))')
        if task == "storyboard_scene" and data["scene"]["index"] == 2:
            return (
                "```json\n"
                + json.dumps(
                    {
                        "visuals": "a circle",
                        "narration": "Refined words for scene three.",
                        "doc_queries": ["draw a circle"],
                    }
                )
                + "\n```"
            )
        return simple(task, data)

    scripted.handler = handler
    with_rag = await start_video(client, settings, request(topic="With docs", use_rag=True))
    without = await start_video(client, settings, request(topic="Without docs"))
    result, _ = await asyncio.gather(with_rag.result(), without.result())

    code_prompts = scripted.prompts_for("write_scene_code")
    rag_prompts = [(d, p) for d, p in code_prompts if d["topic"] == "With docs"]
    plain_prompts = [(d, p) for d, p in code_prompts if d["topic"] == "Without docs"]
    assert len(rag_prompts) == len(plain_prompts) == 3
    # The storyboards' doc queries were answered from the installed manim's docstrings.
    assert all("### manim." in data["docs"] for data, _ in rag_prompts)
    assert any("### manim.mobject.text.text_mobject.Text\n" in d["docs"] for d, _ in rag_prompts)
    assert any("### manim.mobject.mobject.Mobject.arrange\n" in d["docs"] for d, _ in rag_prompts)
    assert all("docs" not in d for d, _ in plain_prompts)
    # The fixer gets the docs of what the error names, then the scene's own.
    (fix,) = [d for d, _ in scripted.prompts_for("fix_scene_code")]
    assert "ufunc 'multiply'" in fix["error"] and fix["docs"].count("### manim.") > 2
    # The storyboard's refined narration is what is spoken (and subtitled).
    srt = LocalStorage(settings.storage_dir).path(result.artifacts.srt_key).read_text()
    assert "Refined words for scene three." in srt and "This is Three." not in srt

    status = await job_status(with_rag)
    assert "retrieving" in status.stages_completed
    for stage in ("planning", "storyboarding", "generating_code"):
        assert status.usage[stage].calls >= 1 and status.usage[stage].prompt_tokens > 0
    row = await jobs.get(with_rag.id)
    assert row.usage.total.calls == 1 + 3 + 3 + 2  # plan, 3 storyboards, 3 code, 1 fix (2 calls)


async def test_planner_and_coder_models_can_differ(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None
) -> None:
    scripted.handler = simple
    req = request(
        model="scripted/test", planner_model="scripted/planner", coder_model="scripted/coder"
    )
    await asyncio.wait_for((await start_video(client, settings, req)).result(), timeout=120)
    by_task: dict[str, set[str]] = {}
    for (task, _, _), model in zip(scripted.prompts, scripted.models, strict=True):
        by_task.setdefault(task, set()).add(model)
    assert by_task == {
        "plan_video": {"planner"},
        "storyboard_scene": {"planner"},
        "write_scene_code": {"coder"},
    }


async def test_an_invalid_plan_is_reasked_with_its_validation_error(scripted: ScriptedLLM) -> None:
    answers = iter(['```json\n{"title": "T", "scenes": [{"title": "Only one"}]}\n```'])
    scripted.handler = lambda task, data: next(answers, None) if task == "plan_video" else None
    plan, usage = await authoring.plan_video(ModelClient(), "scripted/test", "Prime numbers", "")
    assert len(plan.scenes) >= 3 and usage.calls == 2
    first, second = [p for _, p in scripted.prompts_for("plan_video")]
    assert "previous answer was invalid" not in first
    assert "Your previous answer was invalid" in second
    assert "narration" in second and "Field required" in second  # pydantic's own message


async def test_a_rate_limit_is_retried_with_backoff_and_the_job_completes(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None
) -> None:
    calls: list[float] = []

    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            calls.append(time.monotonic())
            if len(calls) == 1:
                raise litellm.RateLimitError("slow down", llm_provider="scripted", model="test")
        return simple(task, data)

    scripted.handler = handler
    handle = await start_video(client, settings, request())
    result = await asyncio.wait_for(handle.result(), timeout=120)
    assert result.scenes == 3 and len(calls) == 2
    assert calls[1] - calls[0] >= 1.5  # Temporal's retry policy waited before asking again


async def test_an_invalid_key_fails_fast_with_a_clear_message(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None
) -> None:
    def handler(task: str, data: dict) -> str | None:
        raise litellm.AuthenticationError("Incorrect API key provided", "scripted", "test")

    scripted.handler = handler
    handle = await start_video(client, settings, request())
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), timeout=30)
    status = await job_status(handle)
    assert status.status == "failed"
    assert "model 'scripted/test' cannot be used" in status.error
    assert "Incorrect API key provided" in status.error
    assert len(scripted.prompts) == 1  # not retried


async def test_only_a_model_with_a_price_is_priced_again(
    scripted: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """litellm prices every answer itself; t2m asks again only for a model registered under the
    name it was asked by (a custom provider's), not for one that has no price (the offline model:
    the same failed search again, ~1.7 ms a call). A priced custom model is still paid for."""
    asked: list[str] = []
    real = litellm.completion_cost

    def recorded(**kw: object) -> float:
        asked.append(str(kw["model"]))
        return real(**kw)  # type: ignore[arg-type]

    monkeypatch.setattr(litellm, "completion_cost", recorded)
    messages = [{"role": "user", "content": "Plan a video about circles"}]
    offline = await ModelClient(None).complete("offline/templates", messages)
    assert offline.text and offline.usage.cost_usd == 0 and asked == []
    litellm.register_model({"scripted/priced": {"input_cost_per_token": 2e-6,
                            "output_cost_per_token": 1e-5, "litellm_provider": "scripted",
                            "mode": "chat"}})  # fmt: skip
    priced = await ModelClient(None).complete("scripted/priced", messages)
    assert priced.usage.cost_usd == pytest.approx(
        2e-6 * priced.usage.prompt_tokens + 1e-5 * priced.usage.completion_tokens
    )
    assert priced.usage.cost_usd > 0


async def test_a_cached_response_is_not_requested_twice(
    scripted: ScriptedLLM, tmp_path: Path
) -> None:
    client = ModelClient(LocalStorage(tmp_path))
    scripted.handler = simple
    first, usage1 = await authoring.plan_video(client, "scripted/test", "Cached topic", "")
    second, usage2 = await authoring.plan_video(client, "scripted/test", "Cached topic", "")
    assert first == second and len(scripted.prompts) == 1
    assert (usage1.cached_calls, usage2.cached_calls) == (0, 1)
    await authoring.plan_video(ModelClient(None), "scripted/test", "Cached topic", "")
    assert len(scripted.prompts) == 2  # with the cache switched off, the model is asked again


async def test_layout_findings_go_to_the_fixer_and_are_listed(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None
) -> None:
    def handler(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("Off screen, fixable", "Off screen, stubborn", "Fine", duration=1.5)
        if task == "write_scene_code":
            bad = data["scene"]["index"] in (0, 1)
            return scene_code(data["class_name"], OFF_SCREEN if bad else None)
        if task == "fix_scene_code":
            stubborn = data["scene"]["index"] == 1
            return scene_code(data["class_name"], OFF_SCREEN if stubborn else None)
        return None

    scripted.handler = handler
    handle = await start_video(client, settings, request(max_fix_attempts=4))
    await asyncio.wait_for(handle.result(), timeout=120)
    fixes = [d for d, _ in scripted.prompts_for("fix_scene_code") if d["scene"]["index"] == 0]
    assert len(fixes) == 1
    assert fixes[0]["error"].startswith("Layout check:")
    assert (
        "Text('Way off to the right') is outside the safe area: past the right edge"
        in (fixes[0]["error"])
    )
    status = await job_status(handle)
    fixed, stubborn, fine = status.scenes
    assert (fixed.attempts, fixed.layout_issues) == (2, [])
    assert stubborn.attempts == 3 and stubborn.state == "done"  # bounded: 2 layout fix rounds
    assert any("outside the safe area" in f for f in stubborn.layout_issues)
    assert (fine.attempts, fine.layout_issues) == (1, [])


async def test_a_vision_reviewers_critique_goes_to_the_fixer(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None
) -> None:
    reviews = iter(["The label is far too small to read; make it at least font_size 36."])

    def handler(task: str, data: dict) -> str | None:
        if task == "critique_scene":
            return next(reviews, "OK")
        if task == "fix_scene_code":
            return scene_code(
                data["class_name"], 'self.play(Write(Text("Readable", font_size=48)))'
            )
        return simple(task, data)

    scripted.handler = handler
    handle = await start_video(client, settings, request(vision_model="scripted/vision"))
    await asyncio.wait_for(handle.result(), timeout=120)
    critiques = [
        i
        for (t, _, _), i in zip(scripted.prompts, scripted.images, strict=True)
        if t == "critique_scene"
    ]
    assert critiques and all(n == 3 for n in critiques)  # three sampled frames each time
    fixes = scripted.prompts_for("fix_scene_code")
    assert len(fixes) == 1 and "far too small to read" in fixes[0][0]["error"]
    status = await job_status(handle)
    assert status.usage["reviewing"].calls == len(critiques)


async def docs_searched(client: Client, handle: WorkflowHandle) -> list[list[str]]:
    """The queries of each `retrieve_docs` the run scheduled, from its history."""
    searched = []
    async for event in handle.fetch_history_events():
        attrs = event.activity_task_scheduled_event_attributes
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        if attrs.activity_type.name == "retrieve_docs":
            [req] = await client.data_converter.decode(attrs.input.payloads, [DocsRequest])
            searched.append(req.queries)
    return searched


async def test_a_fix_with_rag_gets_the_docs_of_what_the_models_queries_name(
    client: Client, scripted: ScriptedLLM, tmp_path: Path
) -> None:
    queries = ["AnnularSector inner and outer radius", "ShowCreation Create"]

    def handler(task: str, data: dict) -> str | None:
        if task == "storyboard_scene":
            return '```json\n{"visuals": "a circle", "doc_queries": ["draw a circle"]}\n```'
        if task == "write_scene_code" and data["scene"]["index"] == 0:
            return scene_code(data["class_name"], SHOW_CREATION)
        if task == "doc_queries_for_error":
            return "```json\n" + json.dumps(queries) + "\n```"
        return simple(task, data)  # the fix: the offline model's

    scripted.handler = handler
    fakes = Fakes(
        render=lambda r: RenderOutcome(
            ok="ShowCreation" not in r.code, error=NAME_ERROR, video_key="k.mp4"
        )
    )
    fakes.models = LLMActivities(ModelClient(None), LocalStorage(tmp_path), tmp_path).all()
    async with running(client, fakes) as queue:
        handle = await client.start_workflow(
            VideoWorkflow.run, request(use_rag=True), id=f"video-{uuid.uuid4()}", task_queue=queue
        )
        await handle.result()
        status = await handle.query(VideoWorkflow.status)
    ((asked, _),) = scripted.prompts_for("doc_queries_for_error")
    assert asked["error"] == NAME_ERROR and SHOW_CREATION in asked["code"]
    searched = await docs_searched(client, handle)
    assert sorted(searched) == sorted([["draw a circle"]] * 3 + [queries])
    ((fix, _),) = scripted.prompts_for("fix_scene_code")
    named = (
        "### manim.mobject.geometry.arc.AnnularSector\n",
        "### manim.animation.creation.Create\n",
    )
    assert all(doc in fix["docs"] for doc in named)
    first_code = scripted.prompts_for("write_scene_code")[0][0]
    assert first_code["docs"] and first_code["docs"] in fix["docs"]  # the storyboard's docs too
    assert not any(
        doc in first_code["docs"] for doc in named
    )  # only the model's queries found these
    assert status.usage["fixing"].calls == 2  # the doc searches and the fix


@pytest.mark.parametrize(
    "answer",
    [
        "Search for ShowCreation.",
        '```json\n["one", "two", "three", "four"]\n```',
        '```json\n{"queries": ["ShowCreation"]}\n```',
        '```json\n[""]\n```',
    ],
)
async def test_unusable_doc_queries_fall_back_to_the_errors_last_line(
    scripted: ScriptedLLM, answer: str
) -> None:
    scripted.handler = lambda task, data: answer
    queries, usage = await authoring.doc_queries_for_error(
        ModelClient(None), "scripted/test", "Circles", SHOW_CREATION, NAME_ERROR
    )
    assert queries == ["NameError: name 'ShowCreation' is not defined"]
    assert usage.calls == 1 and usage.prompt_tokens > 0
