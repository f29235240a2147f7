"""Status pages for the benches: keep-alive HTTP/1.1 connections asking the API for a job's
status every POLL_EVERY_S (`pipeline_bench.py`, `capacity.py`)."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from collections.abc import Callable

POLL_EVERY_S = 0.5
"""Each poller asks again 0.5 s after an answer, like a status page polling twice a second (50 of
them make ~100 requests/s, more than the 54-83/s the speed issue measured)."""


async def poller(
    port: int, paths: list[str], done: Callable[[], bool]
) -> tuple[list[float], Counter[int]]:
    """One status page asking for a random one of `paths` every POLL_EVERY_S until `done()`;
    its latencies (ms) and its answers by HTTP status. Plain asyncio streams, like wrk or a
    browser, so that the figure is the API's latency rather than the CPU an HTTP client library
    spends on 2 cores the renders share."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies: list[float] = []
    answers: Counter[int] = Counter()
    await asyncio.sleep(random.uniform(0, POLL_EVERY_S))  # independent pages, not one burst
    while not done():
        t = time.perf_counter()
        writer.write(
            f"GET {random.choice(paths)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        latencies.append((time.perf_counter() - t) * 1000)
        answers[int(head.split(maxsplit=2)[1])] += 1
        await asyncio.sleep(POLL_EVERY_S)
    writer.close()
    return latencies, answers
