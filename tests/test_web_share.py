"""The web app as deployed with API keys (no dev identity), in real headless Chromium with only
loopback reachable: sign in, create, list, play, share and revoke; a failed job's page; the
confirmation before cancel. One browser for the module, a context per user."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Dialog,
    Route,
    ViewportSize,
    async_playwright,
    expect,
)
from temporalio.client import Client

from api.main import create_app
from t2m.catalog.db import JobStore
from t2m.config import Settings
from t2m.vocabulary.job import JobRecord, JobStatus, SceneStatus
from t2m.vocabulary.request import VideoRequest
from tests.conftest import Caller
from tests.helpers import serve
from tests.scripted import ScriptedLLM, plan_json, scene_code
from tests.test_web import CHROMIUM_ARGS

PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def loopback_only(route: Route) -> None:
    if route.request.url.startswith(("http://127.0.0.1:", "http://localhost:")):
        await route.continue_()
    else:
        await route.abort("internetdisconnected")


async def context(browser: Browser, key: str | None = None) -> BrowserContext:
    """A fresh browser profile (nothing stored), signed in with `key` if given."""
    # bypass_csp: Playwright polls wait_for_function predicates with eval, which the pages' CSP
    # refuses (tests/test_security_headers.py checks the policy itself).
    ctx = await browser.new_context(viewport=PHONE, bypass_csp=True)
    await ctx.route("**/*", loopback_only)
    if key:
        await ctx.add_init_script(f"sessionStorage.setItem('t2m_api_key', {key!r})")
    return ctx


def key_of(caller: Caller) -> str:
    return caller["Authorization"].removeprefix("Bearer ")


async def test_sign_in_then_create_list_play_and_share_until_revoked(
    api_settings: Settings,
    worker: None,
    keys: dict[str, Caller],
    scripted: ScriptedLLM,
    browser: Browser,
) -> None:
    def quick(task: str, data: dict) -> str | None:
        if task == "plan_video":
            return plan_json("Squares", "Circles", "Lines", duration=2.0)
        if task == "write_scene_code":
            return scene_code(data["class_name"])
        return None

    scripted.handler = quick
    async with serve(create_app(api_settings)) as url:
        owner = await context(browser)
        page = await owner.new_page()
        await page.goto(f"{url}/videos")  # no credentials, no dev identity: sign in first
        await page.wait_for_url("**/signin?next=%2Fvideos")
        await page.fill("#api-key", "t2m_not-a-key")
        await page.click("#sign-in")
        await expect(page.locator("#error")).to_contain_text("not valid")
        await page.fill("#api-key", key_of(keys["alice"]))
        await page.click("#sign-in")
        await page.wait_for_url(f"{url}/videos")
        await expect(page.locator(".empty")).to_contain_text("No videos yet")
        await expect(page.locator("#sign-out")).to_be_visible()

        await page.goto(f"{url}/videos/create")
        await page.select_option("#model", "scripted/test")
        await page.fill("#topic", "Shapes on a page")
        await page.select_option("#quality", "low")
        await page.click("#submit")
        await page.wait_for_url("**/videos/status/video-*")
        status_url = page.url
        ended = re.compile("completed|failed|cancelled")
        await expect(page.locator("#status")).to_have_text(ended, timeout=180_000)
        await expect(page.locator("#status")).to_have_text("completed", timeout=1)
        await expect(page.locator("#timing")).to_have_text(re.compile(r"took \d+ s"))
        await page.wait_for_function("document.getElementById('player').readyState >= 2")
        await page.wait_for_function("document.querySelector('#player track').readyState === 2")
        player = await page.locator("#player-card").bounding_box()
        progress = await page.locator("#progress-card").bounding_box()
        assert player and progress and player["y"] < progress["y"]  # done: the video on top

        await page.click("#copy")
        share = page.locator("#share-url")
        await expect(share).to_be_visible()
        link = await share.input_value()
        assert link.startswith(f"{url}/s/")

        await page.goto(f"{url}/videos")  # thumbnails load with their signed token
        await expect(page.locator(".tile")).to_have_count(1)
        await page.wait_for_function("document.querySelector('.tile img')?.naturalWidth > 0")

        anonymous = await context(browser)
        viewer = await anonymous.new_page()
        opened = await viewer.goto(link)
        assert opened is not None and opened.status == 200
        await expect(viewer.locator("#title")).to_have_text("Shapes on a page")
        await viewer.wait_for_function("document.getElementById('player').readyState >= 2")
        media = await viewer.evaluate("document.getElementById('player').currentSrc")
        download = viewer.locator("#download")  # the share page offers the file too
        await expect(download).to_have_attribute(
            "href", re.compile(r"^/api/v1/shared/.+/download$")
        )
        await viewer.goto(f"{url}/videos")  # the link opens that video, nothing else
        await viewer.wait_for_url("**/signin?next=%2Fvideos")

        await page.goto(status_url)
        await expect(page.locator("#revoke")).to_be_visible(timeout=30_000)
        page.once("dialog", lambda d: d.accept())
        await page.click("#revoke")
        await expect(page.locator("#share-url")).to_be_hidden()

        gone = await viewer.goto(link)
        assert gone is not None and gone.status == 404
        await expect(viewer.locator("#gone")).to_contain_text("revoked")
        status = await viewer.evaluate("(u) => fetch(u).then((r) => r.status)", media)
        assert status == 404
        await owner.close()
        await anonymous.close()


async def test_failed_job_page_and_cancel_confirmation(
    api_settings: Settings,
    keys: dict[str, Caller],
    jobs: JobStore,
    client: Client,
    browser: Browser,
) -> None:
    """No worker: a failed job as its workflow leaves it in the catalog, and a queued job."""
    alice = keys["alice"]
    job_id = f"video-{uuid.uuid4()}"
    req = VideoRequest(
        topic="Unusable model",
        context="A line of context.",
        quality="high",
        model="offline/templates",
        owner=alice.user,
        voice=None,
        style_preferences={"theme": "light", "mood": "calm"},
    )
    await jobs.create(job_id, req, "high")
    error = "model 'offline/templates' cannot be used: bad key"
    progress = JobStatus(
        job_id=job_id,
        status="failed",
        current_stage="rendering",
        stages_completed=["queued", "planning", "retrieving", "generating_code"],
        scenes=[SceneStatus(index=0, title="One", state="done"), SceneStatus(index=1)],
        error=error,
        retryable=False,
    )
    record = JobRecord(
        job_id=job_id, owner=alice.user, request=req, status="failed", progress=progress
    )
    await jobs.record(record.model_copy(update={"error": error}))

    async with serve(create_app(api_settings)) as url:
        ctx = await context(browser, key_of(alice))
        page = await ctx.new_page()
        await page.goto(f"{url}/videos/status/{job_id}")
        failed = page.locator("#stages li.failed")
        await expect(failed).to_have_text("rendering")
        await expect(failed).to_have_css("background-color", "rgb(201, 42, 42)")  # --bad, red
        await expect(page.locator("#banner")).to_contain_text("bad key")
        await expect(page.locator("#retry")).to_be_hidden()  # retrying cannot help
        await page.click("#resubmit")
        await page.wait_for_url(f"**/videos/create?from={job_id}")
        await expect(page.locator("#topic")).to_have_value("Unusable model")
        await expect(page.locator("#context")).to_have_value("A line of context.")
        await expect(page.locator("#quality")).to_have_value("high")
        await expect(page.locator("#priority")).to_have_value("high")
        await expect(page.locator("#voice")).to_have_value("none")
        await expect(page.locator("#style_theme")).to_have_value("light")
        await expect(page.locator("#style")).to_have_value("mood: calm")

        await page.fill("#topic", "A queued video")
        await page.select_option("#priority", "normal")  # `high` is an admin's (test_tenancy.py)
        await page.click("#submit")
        await page.wait_for_url("**/videos/status/video-*")
        queued = page.url.rsplit("/", 1)[1]
        try:
            await expect(page.locator("#cancel")).to_be_visible()
            cancels: list[str] = []
            page.on("request", lambda r: cancels.append(r.url) if r.method == "POST" else None)
            asked: list[str] = []

            async def answer(dialog: Dialog, accept: bool) -> None:
                asked.append(dialog.message)
                await (dialog.accept() if accept else dialog.dismiss())

            page.once("dialog", lambda d: answer(d, False))
            await page.click("#cancel")
            await page.wait_for_timeout(300)
            assert asked and "Cancel this video?" in asked[0] and cancels == []
            page.once("dialog", lambda d: answer(d, True))
            async with page.expect_response(f"**/api/v1/jobs/{queued}/cancel") as response:
                await page.click("#cancel")
            assert (await response.value).status == 202
        finally:
            await client.get_workflow_handle(queued).terminate()
        await ctx.close()


async def test_sign_in_goes_on_to_a_page_of_this_site_only(
    api_settings: Settings, keys: dict[str, Caller], browser: Browser
) -> None:
    """`next` may not lead elsewhere: browsers drop tabs and newlines from a URL, so `/<TAB>/host`
    is `//host`, another site (which could then ask for the key again)."""
    async with serve(create_app(api_settings)) as url:
        ctx = await context(browser)
        page = await ctx.new_page()
        elsewhere: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(url) else elsewhere.append(r.url))
        for wanted in ("/\t/evil.example/x", "/\n/evil.example/x", "//evil.example", "/\\evil"):
            await page.goto(f"{url}/signin?next={quote(wanted)}")
            await page.fill("#api-key", key_of(keys["alice"]))
            await page.click("#sign-in")
            for _ in range(100):  # until it went somewhere: this site's list, or elsewhere
                if elsewhere or "/signin" not in page.url:
                    break
                await page.wait_for_timeout(50)
            await page.wait_for_load_state()
            assert elsewhere == [] and page.url == f"{url}/videos", (wanted, page.url, elsewhere)
        await page.goto(f"{url}/signin?next={quote('/videos/create?from=x')}")
        await page.fill("#api-key", key_of(keys["alice"]))
        await page.click("#sign-in")
        await page.wait_for_url(f"{url}/videos/create?from=x")
        await ctx.close()
