"""Heartbeats from the event loop while an activity waits: on a model provider, on storage, or on
blocking work in a thread.

An activity that heartbeats every couple of seconds can be given a `heartbeat_timeout` of ~10 s: a
worker that dies mid-call is noticed in seconds instead of after `start_to_close`, and a cancel of
the job reaches the activity (Temporal delivers cancellation only in a heartbeat's answer). The
awaited work runs as a task of its own, so a cancel that lands while it waits cancels that task:
an in-flight litellm request is abandoned and its HTTP connection closed, not left running (and
billed) for a job nobody wants any more.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from temporalio import activity

T = TypeVar("T")
P = ParamSpec("P")
HEARTBEAT_EVERY_S = 2.0
"""How often a waiting activity heartbeats: well inside a 10-15 s heartbeat timeout (the SDK
sends at most one heartbeat per 0.8 × the timeout anyway; the rest are coalesced locally)."""
MAX_HEARTBEAT_THROTTLE = timedelta(seconds=HEARTBEAT_EVERY_S)
"""For a Worker's `max_heartbeat_throttle_interval`: a cancel arrives in a heartbeat's answer, so
with the SDK's default throttle (0.8 × a 10 s heartbeat timeout) a cancelled job's model call
runs on for up to 8 s (measured 6.8 s); throttled at 2 s it is cancelled in under a second."""


async def heartbeating(work: Awaitable[T], every_s: float = HEARTBEAT_EVERY_S) -> T:
    """Await `work`, heartbeating every `every_s` until it is done; cancelled, cancel `work` too.

    The first beat comes after `every_s`, not at the start: the heartbeat timeout runs from the
    start anyway, and the SDK sends a first beat at once, so a beat at the start was one more RPC
    for every activity (most of a job's 21 take well under `every_s`): 24.5 heartbeats per job in
    bench/capacity.py, as many as its activities."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every_s)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})  # let it unwind (close its connection) before we go
            if not task.cancelled():
                task.exception()  # it ended otherwise as it unwound: ours is the cancel


def heartbeats(
    fn: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate an activity (under `@activity.defn`) to heartbeat for as long as it runs."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return await heartbeating(fn(*args, **kwargs))

    return run
