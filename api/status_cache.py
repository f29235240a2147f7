"""Status that stays instant under load: one snapshot per running job, refreshed by at most one
in-flight workflow query at a time and at most every `max_age_s`.

Without it every status call is a Temporal query answered by a worker whose CPU the renders hold
(p99 of seconds with 50 pollers). With it, pollers share one query per job per `max_age_s`: a
fresh snapshot is answered from memory; a stale one is answered at once while one refresh runs
behind it (stale-while-revalidate, so a busy or stopped worker delays no poller); a job seen for
the first time is answered from what the caller already knows (the catalog row) while its first
query runs, and only a caller that knows nothing waits for it (bounded by the query's timeout).
Pulling like this keeps the workflow free of push plumbing and the API stateless across restarts.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from t2m.models import TERMINAL_STATUSES, JobStatus

Fetch = Callable[[str, JobStatus | None], Awaitable[JobStatus]]


@dataclass
class _Entry:
    status: JobStatus | None = None
    at: float = 0.0
    refresh: asyncio.Task[JobStatus] | None = None


class StatusCache:
    def __init__(self, fetch: Fetch, max_age_s: float = 0.25, max_jobs: int = 10_000) -> None:
        self.fetch = fetch
        self.max_age_s = max_age_s
        self.max_jobs = max_jobs
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    async def get(self, job_id: str, known: JobStatus | None = None) -> JobStatus:
        entry = self._entries.get(job_id)
        if entry is None:
            entry = self._entries[job_id] = _Entry()
            while len(self._entries) > self.max_jobs:
                self._entries.popitem(last=False)
        self._entries.move_to_end(job_id)
        if entry.status is not None and time.monotonic() - entry.at < self.max_age_s:
            return entry.status
        if entry.refresh is None:
            entry.refresh = asyncio.create_task(self._refresh(job_id, entry, known))
        if entry.status is not None:
            return entry.status  # stale by at most one refresh; that refresh is under way
        if known is not None:
            return known  # the catalog's view, until the first query answers
        return await asyncio.shield(entry.refresh)

    async def _refresh(self, job_id: str, entry: _Entry, known: JobStatus | None) -> JobStatus:
        try:
            status = await self.fetch(job_id, entry.status or known)
        finally:
            entry.refresh = None
        entry.status, entry.at = status, time.monotonic()
        if status.status in TERMINAL_STATUSES:  # the catalog row answers from now on
            self._entries.pop(job_id, None)
        return status

    def forget(self, job_id: str) -> None:
        """Drop a job's snapshot (after a cancel, retry or delete changed it)."""
        self._entries.pop(job_id, None)
