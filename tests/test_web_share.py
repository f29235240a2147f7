"""The web app as deployed with API keys (no dev identity), in real headless Chromium with only
loopback reachable: sign in, create, list, play, share and revoke; a failed job's page; the
confirmation before cancel. One browser for the module, a context per user."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Dialog,
    Page,
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


async def subtitles_elsewhere(page: Page, url: str) -> None:
    """video-url answered as with S3 storage: the subtitles on another origin (`localhost` for
    `127.0.0.1`) that has a CORS rule, and in a language (an espeak voice's) Intl has no name for."""
    bucket = url.replace("127.0.0.1", "localhost")

    async def video_url(route: Route) -> None:
        answer = await route.fetch()
        body = await answer.json()
        body.update(subtitles_url=bucket + body["subtitles_url"], language="en-us-nyc")
        await route.fulfill(response=answer, json=body)

    async def cors(route: Route) -> None:
        answer = await route.fetch(url=route.request.url.replace(bucket, url))
        await route.fulfill(
            response=answer, headers={**answer.headers, "access-control-allow-origin": "*"}
        )

    await page.route("**/video-url", video_url)
    await page.route(f"{bucket}/**", cors)


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
        # No clipboard, as on plain HTTP off loopback: Copy link shows the link to copy by hand.
        await owner.add_init_script(
            "Object.defineProperty(Navigator.prototype, 'clipboard', { get: () => undefined })"
        )
        page = await owner.new_page()
        await page.clock.install()  # time flows, and the test can move it on
        await subtitles_elsewhere(page, url)
        expired: list[str] = []  # the video's first load fails, as once its token has expired

        async def expire_once(route: Route) -> None:
            if expired:
                await route.continue_()
            else:
                expired.append(route.request.url)
                await route.fulfill(status=401, json={"detail": "invalid or expired media token"})

        await page.route("**/stream?token=*", expire_once)
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
        await expect(page.locator("#progressbar")).to_have_attribute("aria-valuenow", "100")
        # The player fetched its URLs again when its video failed to load, and plays it.
        await page.wait_for_function("document.getElementById('player').readyState >= 2")
        assert expired
        # Subtitles from another origin load (the video is in CORS mode), labelled by their code.
        await page.wait_for_function("document.querySelector('#player track').readyState === 2")
        await expect(page.locator("#player track")).to_have_attribute("label", "en-us-nyc")
        async with page.expect_request("**/video-url"):  # links fetched anew before they expire
            await page.clock.run_for("25:00")
        player = await page.locator("#player-card").bounding_box()
        progress = await page.locator("#progress-card").bounding_box()
        assert player and progress and player["y"] < progress["y"]  # done: the video on top

        await page.click("#copy")
        share = page.locator("#share-url")
        await expect(share).to_be_visible()
        await expect(page.locator("#copy")).to_have_text("Copy the link below")
        await expect(page.locator("#banner")).to_be_hidden()
        link = await share.input_value()
        assert link.startswith(f"{url}/s/")

        await page.goto(f"{url}/videos")  # thumbnails load with their signed token
        await expect(page.locator(".tile")).to_have_count(1)
        await page.wait_for_function("document.querySelector('.tile img')?.naturalWidth > 0")
        await page.evaluate("document.querySelector('.tile').dataset.shown = 'before'")
        await page.clock.run_for("25:01")  # its link is about to expire: the tile is made anew
        await expect(page.locator(".tile[data-shown]")).to_have_count(0)
        await expect(page.locator(".tile img")).to_be_visible()
        await page.select_option("#filter", "failed")
        await expect(page.locator(".empty")).to_have_text("No failed videos.")

        anonymous = await context(browser)
        viewer = await anonymous.new_page()
        opened = await viewer.goto(link)
        assert opened is not None and opened.status == 200
        await expect(viewer.locator("#title")).to_have_text("Shapes on a page")
        await viewer.wait_for_function("document.getElementById('player').readyState >= 2")
        media = await viewer.evaluate("document.getElementById('player').currentSrc")
        track = viewer.locator("#player track")  # labelled as the job page labels it
        await expect(track).to_have_attribute("srclang", "en")
        await expect(track).to_have_attribute("label", "English")
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


async def test_a_retry_is_timed_from_itself_and_a_page_past_the_stream_limit_waits(
    api_settings: Settings,
    keys: dict[str, Caller],
    jobs: JobStore,
    client: Client,
    browser: Browser,
) -> None:
    """No worker: a job made and cancelled a day ago, retried now (it stays queued). Its page,
    opened afresh, times the retry from itself; an action's error stays through the statuses
    that follow; a silent stream is opened again; a page past the user's open event streams says
    so in the neutral notice, and follows the job once a stream is free."""
    alice = keys["alice"]
    job_id = f"video-{uuid.uuid4()}"
    req = VideoRequest(
        topic="Retried a day later", model="offline/templates", quality="low", owner=alice.user
    )
    await jobs.create(job_id, req, "normal")
    stopped = JobStatus(job_id=job_id, status="cancelled")
    await jobs.record(
        JobRecord(
            job_id=job_id, owner=alice.user, request=req, status="cancelled", progress=stopped
        )
    )
    await jobs.pool.execute(
        "UPDATE jobs SET created_at = created_at - interval '1 day',"
        " run_started_at = run_started_at - interval '1 day' WHERE id = $1",
        job_id,
    )
    async with serve(create_app(api_settings)) as url:
        ctx = await context(browser, key_of(alice))
        page = await ctx.new_page()
        await page.clock.install()  # time flows, and the test can move it on
        await page.goto(f"{url}/videos/status/{job_id}")
        await expect(page.locator("#timing")).to_have_text(re.compile(r"^86\d{3} s elapsed$"))
        try:
            async with page.expect_response(f"**/api/v1/jobs/{job_id}/retry") as response:
                await page.click("#retry")
            assert (await response.value).status == 202
            await page.reload()  # opened afresh: the run is timed from the retry, not the creation
            await expect(page.locator("#status")).to_have_text("queued")
            timing = await page.locator("#timing").text_content()
            elapsed = re.search(r"(\d+) s elapsed", timing or "")
            assert elapsed and int(elapsed.group(1)) < 600, timing
            # An action's error stays in the banner until the next action, whatever statuses come.
            stopping = "job is stopping; try again in a moment"
            await page.route(
                f"**/api/v1/jobs/{job_id}/cancel",
                lambda route: route.fulfill(status=409, json={"detail": stopping}),
            )
            page.once("dialog", lambda d: d.accept())
            await page.click("#cancel")
            await expect(page.locator("#banner")).to_have_text(stopping)
            await page.evaluate("""() => { window.renders = 0; new MutationObserver(() => window.renders++)
                .observe(document.getElementById("status"), { childList: true }); }""")
            # Nothing on the stream for 30 s, not even a keep-alive (every 15 s): a half-dead
            # connection, given up on and opened again; its first status is shown.
            async with page.expect_request(f"**/api/v1/videos/jobs/{job_id}/events"):
                await page.clock.run_for("00:31")
            await page.wait_for_function("window.renders > 0")
            await expect(page.locator("#banner")).to_have_text(stopping)

            # Every stream the user may have open, held elsewhere (the job stays queued).
            events = f"{url}/api/v1/videos/jobs/{job_id}/events"
            async with httpx.AsyncClient(headers=dict(alice)) as http, AsyncExitStack() as held:
                while (await held.enter_async_context(http.stream("GET", events))).is_success:
                    pass
                third = await ctx.new_page()
                await third.goto(f"{url}/videos/status/{job_id}")
                await expect(third.locator("#notice")).to_contain_text("Too many open pages")
                await expect(third.locator("#banner")).to_be_hidden()
            # After the 429's Retry-After (10 s), the page follows the job.
            await expect(third.locator("#status")).to_have_text("queued", timeout=30_000)
            await expect(third.locator("#notice")).to_be_hidden()
        finally:
            await client.get_workflow_handle(job_id).terminate()
        await ctx.close()
