"""`t2m generate` without an API: this process starts the workflow itself, on the running
Temporal, or on an ephemeral dev server with an in-process worker when none answers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.outcome import CANCEL_WAIT_S, after_interrupt, done, fail
from cli.output import Unwritable, warn_without_context, writing
from cli.request_flags import request
from t2m.config import Settings

if TYPE_CHECKING:
    from temporalio.client import WorkflowHandle

    from t2m.vocabulary.job import VideoResult


CONNECT_TIMEOUT_S = 15.0
"""How long the running stack's Temporal may take to answer before an ephemeral one is started."""


@contextlib.asynccontextmanager
async def client_for(settings: Settings, quiet: bool) -> AsyncIterator:
    """The running stack's client, or an ephemeral dev server + in-process worker."""
    from cli.stack import dev_server_flags, temporal_binary
    from workflows.client import connect, ensure_search_attributes

    try:
        # A stack that is not there refuses at once; one that is answers slowly on a busy host,
        # and within 3 s the command could start an ephemeral stack of its own beside it.
        # `asyncio.timeout`, not `wait_for`: that can lose a Ctrl-C (workflows/client.py).
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            client = await connect(settings)
    except Exception:
        client = None
    if client is not None:  # the command runs outside the try: its errors are its own
        yield client
        return
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    import worker

    if not quiet:
        print("No t2m stack answers; starting an ephemeral one for this command.", file=sys.stderr)
    # The dev server inherits stdout; point it at stderr so `--json` output stays clean.
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        env = await WorkflowEnvironment.start_local(
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            dev_server_existing_path=temporal_binary(),
            dev_server_log_level="error",
            dev_server_extra_args=dev_server_flags(),
            ui=False,
        )
    finally:
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    async with env:
        await ensure_search_attributes(env.client)
        # No drain: this stack ends with the command, so work left running has nowhere to go on.
        no_drain = settings.model_copy(update={"worker_drain_s": 0})
        async with worker.running(env.client, no_drain):
            yield env.client


async def generate(settings: Settings, args: argparse.Namespace) -> int:
    from temporalio.client import WorkflowFailureError

    from cli.progress import ProgressView
    from t2m.requests import InvalidRequest
    from t2m.vocabulary.request import PRIORITY_KEYS
    from workflows.client import job_status, start_video

    try:
        req = request(settings, args)
    except InvalidRequest as e:
        return fail(args, None, f"invalid request: {e}", code=2)
    warn_without_context(req.model, req.context)
    async with client_for(settings, args.json) as client:
        priority_key = PRIORITY_KEYS[args.priority]
        handle = await start_video(client, settings, req, priority_key=priority_key)
        view = ProgressView(handle.id, stream=sys.stderr)
        result_task = asyncio.ensure_future(handle.result())
        try:
            with view:
                while not result_task.done():
                    view.update(await job_status(handle))
                    await asyncio.wait({result_task}, timeout=0.5)
                status = await job_status(handle)
                view.update(status)
            result = result_task.result()
        except (KeyboardInterrupt, asyncio.CancelledError):
            return await interrupted(settings, args, handle, result_task)
        except WorkflowFailureError as e:
            status = await job_status(handle)
            reason = status.error or str(e.cause or e)
            return fail(args, handle.id, reason, status.status, retryable=status.retryable)
    try:
        paths = fetch(settings, result, args.out)
    except Unwritable as e:
        return fail(args, result.job_id, str(e))
    a = result.artifacts
    return done(args, result.job_id, paths, a.duration_s, result.scenes, status.reused_from)


async def interrupted(
    settings: Settings,
    args: argparse.Namespace,
    handle: WorkflowHandle[Any, VideoResult],
    result: asyncio.Future[VideoResult],
) -> int:
    """Ctrl-C: cancel the job (refused if its run is over), wait for its run to end (for
    `CANCEL_WAIT_S` at most; a second Ctrl-C stops the command at once), and tell it as it is
    (`after_interrupt`). A job that completed anyway has its files fetched into `--out`: an
    ephemeral stack ends with this command, so they could not be asked for later."""
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import CancelledError
    from temporalio.service import RPCError

    with contextlib.suppress(RPCError):
        await handle.cancel()
    await asyncio.wait({result}, timeout=CANCEL_WAIT_S)
    if not result.done():
        return after_interrupt(args, handle.id, "cancelling")
    try:
        done_result = result.result()
    except WorkflowFailureError as e:
        if isinstance(e.cause, CancelledError):
            return after_interrupt(args, handle.id, "cancelled")
        return after_interrupt(args, handle.id, "failed", str(e.cause or e))
    try:
        fetch(settings, done_result, args.out)
    except Unwritable as e:
        return after_interrupt(args, handle.id, "completed", str(e))
    return after_interrupt(args, handle.id, "completed", f"its files are in {args.out}")


def fetch(settings: Settings, result: VideoResult, out: Path) -> dict[str, str | None]:
    """A completed job's video, subtitles and thumbnail from storage into `out`, by field.
    Raises Unwritable for a file that cannot be written there."""
    from t2m.catalog.storage import get_storage

    storage = get_storage(settings)
    a = result.artifacts
    paths: dict[str, str | None] = {}
    for field, key, ext in (
        ("video", a.video_key, "mp4"),
        ("subtitles_srt", a.srt_key, "srt"),
        ("subtitles_vtt", a.vtt_key, "vtt"),
        ("thumbnail", a.thumbnail_key, "png"),
    ):
        if not key:
            paths[field] = None
            continue
        with writing(out / f"{result.job_id}.{ext}") as dest:
            paths[field] = str(storage.get_file(key, dest).resolve())
    return paths
