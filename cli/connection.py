"""The Temporal client a command works with: the running stack's, or, when none answers, an
ephemeral dev server with an in-process worker for the command's duration."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator

from t2m.config import Settings


@contextlib.asynccontextmanager
async def stack_client(settings: Settings, quiet: bool) -> AsyncIterator:
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
