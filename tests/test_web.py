"""The web app in real headless Chromium (Debian's, driven by playwright): create → follow → play."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.async_api import Page, Route, async_playwright, expect

from api.main import create_app
from t2m.config import Settings
from t2m.vocabulary.job import STAGES
from tests.helpers import free_port, serve

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
async def web_url(settings: Settings, worker: None) -> AsyncIterator[str]:
    """The API and pages served by uvicorn on loopback (dev identity), with a worker behind."""
    port = free_port()
    app = create_app(settings.model_copy(update={"dev_user": f"web-{uuid.uuid4().hex[:8]}"}))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        # a phone; bypass_csp: wait_for_function polls its predicate with eval, which CSP refuses
        yield await browser.new_page(viewport={"width": 390, "height": 844}, bypass_csp=True)
        await browser.close()


async def test_create_follow_play_and_seek(web_url: str, page: Page) -> None:
    await page.goto(f"{web_url}/videos/create")
    await expect(page.locator("#model option")).to_have_count(1)
    await page.click("#submit")
    await expect(page.locator('.error[data-for="topic"]')).to_contain_text("at least 3 characters")

    await page.fill("#topic", "Pythagorean Theorem")
    await page.fill("#context", "In a right triangle, a^2 + b^2 = c^2. The hypotenuse is longest.")
    await page.select_option("#quality", "low")
    await page.click("#submit")
    await page.wait_for_url("**/videos/status/video-*")
    await expect(page.locator("#title")).to_have_text("Pythagorean Theorem")
    await expect(page.locator("#scenes tr").first).to_be_visible(timeout=30_000)
    await expect(page.locator("#status")).to_have_text("completed", timeout=180_000)
    await expect(page.locator("#cancel")).to_be_hidden()
    await expect(page.locator("#usage")).to_be_empty()  # the offline model has no price

    await page.wait_for_function(
        "document.getElementById('player').readyState >= 2", timeout=30_000
    )
    duration = await page.evaluate("document.getElementById('player').duration")
    assert duration > 10  # the offline model narrates the two sentences once, no filler
    seeked = await page.evaluate(
        """(t) => new Promise((resolve) => {
            const v = document.getElementById('player');
            v.addEventListener('seeked', () => resolve(v.currentTime), { once: true });
            v.currentTime = t;
        })""",
        duration / 2,
    )
    assert abs(seeked - duration / 2) < 1.0
    await expect(page.locator("#download")).to_have_attribute(
        "href", re.compile(r"/download\?token=.+")
    )

    await page.goto(f"{web_url}/videos")
    await expect(page.locator(".tile")).to_have_count(1)
    await expect(page.locator(".tile .badge")).to_have_text("completed")
    await expect(page.locator(".tile img")).to_be_visible()


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_api_docs_render_with_only_loopback_reachable(
    settings: Settings, page: Page, path: str
) -> None:
    """Swagger UI and ReDoc come from the API itself: with every non-loopback request aborted,
    the operations still render."""
    outside: list[str] = []

    async def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort("internetdisconnected")

    await page.route("**/*", loopback_only)
    async with serve(create_app(settings)) as url:
        await page.goto(f"{url}{path}")
        if path == "/docs":
            operations = page.locator(".opblock")
            await expect(operations.first).to_be_visible(timeout=30_000)
            await expect(page.locator(".opblock-summary-path").first).to_contain_text("/api/v1/")
            assert await operations.count() >= 10
        else:
            await expect(page.locator("h1").first).to_contain_text("t2m", timeout=30_000)
            await expect(page.get_by_text("/api/v1/videos/generate").first).to_be_attached()
            # ReDoc's "powered by" footer logo is hard-wired to its CDN: only that may be missing.
            outside = [u for u in outside if u != "https://cdn.redoc.ly/redoc/logo-mini.svg"]
    assert outside == []


async def test_a_completed_jobs_scene_is_regenerated_from_its_page(
    web_url: str, page: Page
) -> None:
    """Each scene row has a Regenerate button: it asks for feedback in a dialog (which says that
    the offline model does not read it) and makes the video's next version, said in the neutral
    notice, not the error banner; the page then plays it and offers the previous one. The
    job page's first GET /api/v1/config fails: it is asked again, not kept failed."""
    config_failed: list[str] = []

    async def config_down_once(route: Route) -> None:
        if "/videos/status/" in route.request.frame.url and not config_failed:
            config_failed.append(route.request.url)
            await route.fulfill(status=503, json={"detail": "the API is restarting"})
        else:
            await route.continue_()

    await page.route("**/api/v1/config", config_down_once)
    await page.goto(f"{web_url}/videos/create")
    await page.fill("#topic", "Circles")
    await page.fill("#context", "A circle is the set of points at one distance from its centre.")
    await page.select_option("#quality", "low")
    await page.click("#submit")
    await page.wait_for_url("**/videos/status/video-*")
    await expect(page.locator("#status")).to_have_text("completed", timeout=180_000)
    await expect(page.locator("#previous")).to_be_hidden()
    assert config_failed
    await page.locator("#scenes tr").nth(1).locator("button.regenerate").click()
    dialog = page.locator("#feedback-dialog")
    await expect(dialog).to_be_visible()
    await dialog.locator("button[value=regenerate]").click()  # no feedback: it asks for some
    await expect(dialog).to_be_visible()
    assert await page.locator("#feedback-text").evaluate("(t) => t.validity.valueMissing")
    await expect(dialog.locator("#feedback-note")).to_contain_text("does not read feedback")
    await dialog.locator("button[value=cancel]").click()  # cancelled: nothing is asked
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#notice")).to_be_hidden()
    await page.locator("#scenes tr").nth(1).locator("button.regenerate").click()
    await page.fill("#feedback-text", "Larger text, please")
    await dialog.locator("button[value=regenerate]").click()
    await expect(page.locator("#notice")).to_contain_text("version 2")
    await expect(page.locator("#banner")).to_be_hidden()
    await expect(page.locator("#timing")).to_contain_text("regenerating scene 2")
    await expect(page.locator("#previous")).to_have_text("Previous version (v1)", timeout=120_000)
    await expect(page.locator("#previous")).to_have_attribute(
        "href", re.compile(r"/download\?token=.+&version=1")
    )
    await expect(page.locator("#status")).to_have_text("completed")
    await expect(page.locator("#stages li")).to_have_count(len(STAGES))
