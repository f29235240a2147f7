"""Watch while it renders, in real headless Chromium: the job page plays a done scene while a
later one is still being written, then moves to the whole video when it is done; the video's
audio and subtitle streams carry the request's language."""

from __future__ import annotations

import asyncio
import io
import json

import av
import httpx
import pytest
from playwright.async_api import Page, expect

from tests.scripted import ScriptedLLM, plan_json
from tests.test_web import page, web_url  # noqa: F401 (fixtures)

PLAYABLE = "(v) => v && v.readyState >= 2 && v.videoWidth > 0 && v.duration > 1"


@pytest.mark.parametrize(
    "settings", [{"allowed_models": ["offline/templates", "scripted/test"]}], indirect=True
)
async def test_the_page_plays_a_scene_before_the_video_is_done(
    web_url: str,  # noqa: F811
    page: Page,  # noqa: F811
    scripted: ScriptedLLM,
) -> None:
    held = asyncio.Event()  # the last scene's code is written only once the test says so

    async def gate(task: str, data: dict) -> None:
        if task == "write_scene_code" and data["scene"]["index"] == 2:
            await held.wait()

    scripted.gate = gate
    scripted.handler = lambda task, data: (
        plan_json("Un", "Deux", "Trois", duration=2.0) if task == "plan_video" else None
    )
    body = {
        "configuration": {
            "topic": "Regarder tôt",
            "model": "scripted/test",
            "quality": "low",
            "style_preferences": {"language": "fr"},
        }
    }
    await page.goto(f"{web_url}/videos")
    created = await page.evaluate(
        """(body) => fetch('/api/v1/videos/generate', {method: 'POST',
             headers: {'Content-Type': 'application/json'}, body}).then((r) => r.json())""",
        json.dumps(body),
    )
    try:
        await page.goto(f"{web_url}/videos/status/{created['job_id']}")
        preview = page.locator("#scene-player")
        await preview.wait_for(timeout=120_000)
        await page.wait_for_function(
            f"({PLAYABLE})(document.getElementById('scene-player'))", timeout=60_000
        )
        await expect(page.locator("#status")).to_have_text("running")  # scene 3 is held back
        await expect(page.locator("#scene-caption")).to_contain_text("Scene 1 of 3")
        assert await page.locator("#player-card").is_hidden()
    finally:
        held.set()
    await expect(page.locator("#status")).to_have_text("completed", timeout=180_000)
    await page.wait_for_function(f"({PLAYABLE})(document.getElementById('player'))")
    await expect(page.locator("#preview-card")).to_have_count(0)  # the whole video took over
    track = page.locator("#player track")
    await expect(track).to_have_attribute("srclang", "fr")

    video_url = await page.evaluate("document.getElementById('player').currentSrc")
    subtitles_url = await page.evaluate("document.getElementById('subs').href")
    async with httpx.AsyncClient() as http:
        data = (await http.get(video_url)).content
        subs = await http.get(subtitles_url)
    assert f'filename="{created["job_id"]}.fr.vtt"' in subs.headers["content-disposition"]
    with av.open(io.BytesIO(data)) as c:
        tags = {s.type: s.metadata.get("language") for s in c.streams}
    assert tags["audio"] == tags["subtitle"] == "fra", tags
