"""Style that works: `style_preferences` (theme, accent_color, pace, audience, language, free text)
is validated, reaches every prompt, is honoured by the offline model, and changes the video."""

from __future__ import annotations

import argparse
import uuid

import av
import httpx
import numpy as np
import pytest
from playwright.async_api import async_playwright, expect
from pydantic import ValidationError
from temporalio.client import Client

from api.main import create_app
from cli.main import _parser
from cli.request_flags import request as _request
from t2m.authoring import steps as authoring
from t2m.authoring.llm import ModelClient
from t2m.catalog.db import JobStore
from t2m.catalog.storage import LocalStorage
from t2m.config import Settings
from t2m.requests import InvalidRequest, build_request
from t2m.vocabulary.plan import Cue, ScenePlan
from t2m.vocabulary.request import VideoOptions
from tests.helpers import serve
from tests.scripted import ScriptedLLM
from workflows.client import start_video

STYLE = {"theme": "light", "accent_color": "#D35400", "pace": "slow", "audience": "beginner",
         "language": "en", "mood": "calm and friendly"}  # fmt: skip
CONTEXT = "In a right triangle, a^2 + b^2 = c^2. The hypotenuse is the longest side."


@pytest.mark.parametrize(
    ("style", "message"),
    [
        ({"theme": "blue"}, "theme must be one of dark|light, not 'blue'"),
        ({"pace": "warp"}, "pace must be one of slow|normal|fast"),
        ({"audience": "cats"}, "audience must be one of beginner|"),
        ({"accent_color": "#12345"}, "accent_color must be #RRGGBB, #RGB or one of"),
        ({"language": "French!"}, "language must be a language code such as en, fr or pt-br"),
    ],
)
def test_known_keys_are_validated(style: dict, message: str) -> None:
    with pytest.raises(ValidationError, match="style_preferences") as e:
        VideoOptions(topic="Style", style_preferences=style)
    assert message in str(e.value)


def test_known_keys_are_normalized_and_unknown_ones_kept() -> None:
    options = VideoOptions(
        topic="Style",
        style_preferences={"Theme": "LIGHT", "accent-color": "teal", "Mood": "calm"},
    )
    assert options.style_preferences == {
        "theme": "light",
        "accent_color": "#5CD0B3",
        "Mood": "calm",
    }


def test_the_voice_follows_the_language(settings: Settings) -> None:
    def voice(style: dict, given: str | None = None) -> str | None:
        options = VideoOptions(topic="Style", style_preferences=style, voice=given)
        return build_request(settings, options, "ada").voice

    assert voice({}) == settings.default_voice == "en-us"
    assert voice({"language": "fr"}) == "fr"
    assert voice({"language": "de"}) == "de"
    assert voice({"language": "en"}) == "en-us"  # the default's language keeps the default
    assert voice({"language": "fr"}, given="en-gb") == "en-gb"  # a given voice wins
    with pytest.raises(InvalidRequest) as e:
        voice({"language": "xx"})
    assert e.value.field == "style_preferences.language" and "no espeak-ng voice" in e.value.message


async def test_bad_style_is_a_422_naming_the_field(api: httpx.AsyncClient, keys: dict) -> None:
    for style, text in (({"theme": "neon"}, "theme must be one of"), ({"language": "zz"}, "zz")):
        body = {"configuration": {"topic": "Style", "style_preferences": style}}
        r = await api.post("/api/v1/videos/generate", json=body, headers=keys["alice"])
        assert r.status_code == 422, r.text
        assert "style_preferences" in r.text and text in r.text


def test_cli_style_flags_become_the_request(settings: Settings) -> None:
    def args(*style: str) -> argparse.Namespace:
        flags = [f"--style={kv}" for kv in style]
        return _parser().parse_args(["generate", "Style", "--quality", "low", *flags])

    req = _request(settings, args("theme=light", "language=fr", "mood=calm = kind"))
    assert req.style_preferences == {"theme": "light", "language": "fr", "mood": "calm = kind"}
    assert req.voice == "fr"
    with pytest.raises(InvalidRequest, match="KEY=VALUE"):
        _request(settings, args("theme"))
    with pytest.raises(InvalidRequest, match="theme must be one of"):
        _request(settings, args("theme=neon"))


async def test_style_reaches_every_prompt(scripted: ScriptedLLM) -> None:
    client, model = ModelClient(None), "scripted/test"
    plan, _ = await authoring.plan_video(client, model, "Styled", CONTEXT, STYLE)
    scene = plan.scenes[1]
    board, _ = await authoring.storyboard_scene(client, model, "Styled", scene, 3, STYLE)
    cues = [Cue(start=0, end=2, text=scene.narration)]
    await authoring.write_scene_code(client, model, "Styled", scene, 3, board, None, cues, STYLE)
    await authoring.fix_scene_code(
        client, model, "Styled", scene, "x", "boom", 1, None, cues, STYLE
    )
    await authoring.doc_queries_for_error(client, model, "Styled", "x", "boom", STYLE)
    await authoring.critique_frames(client, model, scene, [], STYLE)
    tasks = [t for t, _, _ in scripted.prompts]
    assert tasks == [
        "plan_video", "storyboard_scene", "write_scene_code", "fix_scene_code",
        "doc_queries_for_error", "critique_scene",
    ]  # fmt: skip
    for task, data, prompt in scripted.prompts:
        assert data["style"] == STYLE, task
        assert all(key in prompt for key in STYLE), task
        assert '"accent_color"' in prompt and "free-text" in prompt, task


async def test_offline_code_honours_theme_accent_pace_and_language() -> None:
    client, model = ModelClient(None), "offline/templates"
    scene = ScenePlan(index=1, title="Idée", narration="Une phrase.", key_points=["Une phrase."])
    cues = [Cue(start=0.5, end=4.5, text="Une phrase.")]

    async def code(style: dict) -> str:
        text, _ = await authoring.write_scene_code(
            client, model, "Topic", scene, 3, None, None, cues, style
        )
        return text

    light = await code({"theme": "light", "accent_color": "#D35400"})
    dark = await code({})
    assert "BG, FG, ACCENT = '#FAFAF7', '#1B1B1B', '#D35400'" in light
    assert "BG, FG, ACCENT = '#000000', '#F2F2F2', '#58C4DD'" in dark
    slow, fast = await code({"pace": "slow"}), await code({"pace": "fast"})
    assert "run_time=1.40" in slow and "run_time=0.70" in fast and "run_time=1.40" not in fast
    assert await code({"audience": "beginner"}) == slow  # beginners get the slow pace
    assert await code({"audience": "expert"}) == fast
    assert await code({"audience": "expert", "pace": "slow"}) == slow  # a given pace wins
    plan, _ = await authoring.plan_video(client, model, "Théorème", CONTEXT, {"language": "fr"})
    assert [s.title for s in plan.scenes[1:]] == ["La formule", "Idées clés", "Résumé"]
    assert "a au carré plus b au carré égale c au carré" in plan.scenes[1].narration


def mean_luminance(video) -> float:
    with av.open(str(video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    picked = np.stack(frames[:: max(1, len(frames) // 12)]).astype(np.float64) / 255
    return float((picked @ np.array([0.2126, 0.7152, 0.0722])).mean())


async def test_a_light_french_video_end_to_end(
    client: Client, settings: Settings, scripted: ScriptedLLM, worker: None, jobs: JobStore
) -> None:
    options = VideoOptions(
        topic="Pythagore",
        context="Dans un triangle rectangle, a^2 + b^2 = c^2. L'hypoténuse est le plus long côté.",
        quality="low",
        style_preferences={"theme": "light", "accent_color": "#D35400", "language": "fr"},
    )
    req = build_request(settings, options, "ada")
    assert req.voice == "fr"
    handle = await start_video(client, settings, req.model_copy(update={"model": "scripted/test"}))
    result = await handle.result()
    assert {t for t, _, _ in scripted.prompts} >= {
        "plan_video",
        "storyboard_scene",
        "write_scene_code",
    }
    assert all(d["style"]["theme"] == "light" for _, d, _ in scripted.prompts)
    storage = LocalStorage(settings.storage_dir)
    video = storage.path(result.artifacts.video_key)
    assert mean_luminance(video) > 0.5
    srt = storage.path(result.artifacts.srt_key or "").read_text()
    assert "hypoténuse" in srt and "Résumé" not in srt
    texts = [" ".join(block.splitlines()[2:]) for block in srt.strip().split("\n\n")]
    assert texts and all(t.rstrip().endswith((".", "!", "?")) for t in texts), texts
    assert len(texts) == len(set(texts))  # every cue a whole sentence, none said twice


async def test_the_form_sends_its_style_fields(settings: Settings) -> None:
    """The create page's theme, accent, pace, audience, language and budget fields reach the API,
    whose 422 for a bad one is shown under its field."""
    app = create_app(settings.model_copy(update={"dev_user": f"style-{uuid.uuid4().hex[:8]}"}))
    async with serve(app) as url, async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        page = await browser.new_page()
        await page.goto(f"{url}/videos/create")
        await page.fill("#topic", "Styled form")
        await page.select_option("#style_theme", "light")
        await page.select_option("#style_pace", "slow")
        await page.select_option("#style_audience", "beginner")
        await page.fill("#style_accent_color", "ugly")
        await page.click("#submit")
        error = page.locator('.error[data-for="style_preferences.accent_color"]')
        await expect(error).to_contain_text("accent_color must be #RRGGBB")
        await page.fill("#style_accent_color", "#D35400")
        await page.fill("#style_language", "zz")
        await page.click("#submit")
        await expect(error).to_be_empty()
        language = page.locator('.error[data-for="style_preferences.language"]')
        await expect(language).to_contain_text("language 'zz' has no espeak-ng voice")
        await page.fill("#style_language", "")
        await page.fill("#max_cost_usd", "0")  # the budget field reaches the API as a number
        await page.click("#submit")
        budget = page.locator('.error[data-for="max_cost_usd"]')
        await expect(budget).to_contain_text("greater than 0")
        await browser.close()
