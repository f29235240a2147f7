"""`t2m generate` without an API: this process starts the workflow itself, on the running
Temporal, or on an ephemeral dev server with an in-process worker when none answers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator

from cli.outcome import done, fail
from cli.output import warn_without_context
from cli.request_flags import request
from t2m.config import Settings


@contextlib.asynccontextmanager
async def client_for(settings: Settings, quiet: bool) -> AsyncIterator:
    """The running stack's client, or an ephemeral dev server + in-process worker."""
    from cli.stack import dev_server_flags, temporal_binary
    from workflows.client import connect, ensure_search_attributes

    try:
        yield await asyncio.wait_for(connect(settings), timeout=3)
        return
    except Exception:
        pass
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
    from t2m.catalog.storage import get_storage
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
            await handle.cancel()  # exit 130, as for any interrupted command
            return fail(args, handle.id, "cancelled by the user", status="cancelled", code=130)
        except WorkflowFailureError as e:
            status = await job_status(handle)
            reason = status.error or str(e.cause or e)
            return fail(args, handle.id, reason, status.status, retryable=status.retryable)
    storage = get_storage(settings)
    a = result.artifacts
    args.out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str | None] = {}
    for field, key, ext in (
        ("video", a.video_key, "mp4"),
        ("subtitles_srt", a.srt_key, "srt"),
        ("subtitles_vtt", a.vtt_key, "vtt"),
        ("thumbnail", a.thumbnail_key, "png"),
    ):
        dest = args.out / f"{result.job_id}.{ext}"
        paths[field] = str(storage.get_file(key, dest).resolve()) if key else None
    return done(args, result.job_id, paths, a.duration_s, result.scenes, status.reused_from)
