"""Status that stays instant under load: one snapshot per running job, refreshed by at most one
in-flight refresh at a time and at most every `max_age_s` (`MAX_AGE_S`); a refresh asks the
worker (a workflow query) only when the workflow's history has grown since its last answer.

Without it every status call is a catalog read plus a Temporal query answered by a worker whose
CPU the renders hold (p99 of seconds with 50 pollers). With it, pollers share one refresh per job
per `max_age_s`: a fresh snapshot is answered from memory; a stale one is answered at once while
one refresh runs behind it (stale-while-revalidate, so a busy or stopped worker, or a slow
database, delays no poller); only pollers get stale answers: a job seen for the first time, or not
asked about for `idle_s`, waits for a refresh (shared by everyone asking at that moment), so a
one-off request or a stream's first event is the current state, never the row's or an old
snapshot's "queued 0%" while scenes have rendered. A snapshot holds the row too, so the owner
check needs no database read; a refresh re-reads the row only when the workflow has moved on (a
delete through another API replica cancels it first, so the job disappears here within one
refresh), and keeps the last row while the database is away, so a running job's status stays
live through a catalog outage. Ended jobs are not kept: their row is the answer.

A job someone watches is watched in turn: once a refresh knows its run and history length, one
long poll of that history (`Watch`) tells when it grows, and until it does the snapshot is current
whatever its age, so asking costs no Temporal call at all (a job waiting for a slot was a describe
per refresh: ~4 ms of server CPU, the largest part of status cost in bench/capacity.py), and
once it grows the refresh asks the worker straight away, with no describe to find that out, or
asks nobody when the history itself carries the new status (a run keeps it in its memo: the
watcher reads the upsert as it lands; `workflows.video.STATUS_MEMO`). The
refresh still runs on a time basis while nothing watches (first sight, no watch slot left, the
long poll failing, Temporal away) and while the workflow task keeps failing (`held`: its retries add
no events). Watching stops when the run closes or nobody asked for `watch_idle_s`; the API stays
stateless across restarts (a new process starts from pulls). A watcher that saw the history grow
polls again after `max_age_s`, not at once: a busy job's event batches come tens of milliseconds
apart, and a wake for each (10 busy jobs: ~15 a second) doubled status p99 with 50 pollers
(8–16 → 15–29 ms, bench/pipeline_bench.py's load), while a refresh runs at most every
`max_age_s` anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

from t2m.catalog.db import Job
from t2m.vocabulary.job import TERMINAL_STATUSES, JobStatus

log = logging.getLogger(__name__)

Rows = Callable[[str], Awaitable[Job | None]]
Query = Callable[[str, JobStatus, str, str], Awaitable[tuple[JobStatus, str]]]
"""(job id, last status, the workflow's run and history length it goes with, the run and length
its watcher saw since or "") -> the same, now (`workflows.client.job_status_since`: a workflow
with no new events costs no query; one its watcher saw grow costs no describe)."""
Watch = Callable[[str, str], AsyncGenerator[tuple[str, JobStatus | None]]]
"""(job id, the `seen` of a refresh) -> that run's `seen` each time its history grows, and now and
then when it did not, with its status at that point when the history says it (None: ask); ends
when the run closes (`workflows.client.history_growth`)."""

MAX_AGE_S = 1.0
"""How often an asked-about job's snapshot is refreshed while nothing watches it. Progress moves
when an activity ends (seconds apart; a job waiting for a render slot, minutes), and the web page's
stream looks once a second (`Limits.events_poll_s`): refreshing every 0.25 s made each poll of a
page asking twice a second a refresh (~6 ms of CPU across the stack, bench/status_cost.py); now a
poller sees a change at most ~1 s plus one refresh late (a watched job: one refresh late)."""
MAX_WATCHED = 500
"""Jobs watched at once by one API process, each one long poll held by the Temporal frontend; beyond
it a job's snapshot is refreshed by time, as before watching. A frontend admits 1,200 history long
polls per namespace at once by default (`frontend.namespaceCount`, counted apart from the workers'
task polls), so two API replicas fit one frontend; past that, polls are refused and their jobs
refreshed by time."""
WATCH_IDLE_S = 60.0
"""A job nobody asked about for this long is no longer watched."""
WATCH_RETRY_S = 30.0
"""After its long poll failed (e.g. refused: the frontend's limit), a job is refreshed by time this
long before it is watched again, so that a refused poll is not retried on every refresh."""


@dataclass(frozen=True)
class Snapshot:
    job: Job
    """The catalog row as of the last refresh."""
    status: JobStatus
    """The workflow's status as of the last refresh (the row's view until the first query)."""


@dataclass
class _Entry:
    snapshot: Snapshot
    at: float = 0.0
    """When the snapshot's last refresh started (0: never: it is the row's view); from its start,
    so that a stream looking every `max_age_s` refreshes on every look."""
    seen: str = ""
    """The workflow's run and history length the status goes with ("": unknown)."""
    asked: float = 0.0
    """When someone last asked for it."""
    refresh: asyncio.Task[None] | None = None
    deleted: bool = False
    watcher: asyncio.Task[None] | None = None
    latest: str = ""
    """The run and history length its watcher last saw ("": not watched)."""
    latest_status: JobStatus | None = None
    """The status at `latest`, when the history says it (the run's memo): a refresh then asks
    nobody."""
    watch_after: float = 0.0
    """Not watched again before this (its last long poll failed)."""

    def current(self) -> bool:
        """Its watcher saw no event since the last refresh, and the workflow is not held (a
        failing workflow task's retries add no events): the snapshot is the job's status now."""
        return bool(self.latest) and self.latest == self.seen and self.snapshot.status.held is None


def _ended(job: Job) -> bool:
    return job.status in TERMINAL_STATUSES and job.progress is not None


def row_status(job: Job) -> JobStatus:
    """What the catalog row knows of a job's status."""
    if job.progress is not None:
        return job.progress
    return JobStatus(job_id=job.id, status="running" if job.status == "running" else "queued")


class StatusCache:
    def __init__(
        self,
        rows: Rows,
        query: Query,
        watch: Watch | None = None,
        max_age_s: float = MAX_AGE_S,
        max_jobs: int = 10_000,
        idle_s: float = 3.0,
        max_watched: int = MAX_WATCHED,
        watch_idle_s: float = WATCH_IDLE_S,
        watch_retry_s: float = WATCH_RETRY_S,
    ) -> None:
        self.rows = rows
        self.query = query
        self.watch = watch
        self.max_watched = max_watched
        self.watch_idle_s = watch_idle_s
        self.watch_retry_s = watch_retry_s
        self._watchers: set[asyncio.Task[None]] = set()
        self.max_age_s = max_age_s
        self.idle_s = idle_s
        """Asked again after this long, a job's caller is no poller: it waits for a refresh."""
        self.max_jobs = max_jobs
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    async def get(self, job_id: str, row: Job | None = None, wait: bool = True) -> Snapshot | None:
        """The job's snapshot (None: no such job); `row` spares a read when the caller has it;
        `wait=False` (the job was just made: its row is the truth) never waits for a refresh."""
        entry = self._entries.get(job_id)
        if entry is None:
            row = row or await self.rows(job_id)
            if row is None:
                return None
            if _ended(row):
                return Snapshot(row, row_status(row))
            entry = self._entries.setdefault(job_id, _Entry(Snapshot(row, row_status(row))))
            while len(self._entries) > self.max_jobs:
                self._drop(*self._entries.popitem(last=False))
        self._entries.move_to_end(job_id)
        now = time.monotonic()
        one_off = now - entry.asked > self.idle_s
        if wait:  # the job's maker (`wait=False`) is no poller: the first request still waits
            entry.asked = now
        stale = now - entry.at >= self.max_age_s and not entry.current()
        if stale and entry.refresh is None:
            entry.refresh = asyncio.create_task(self._refresh(job_id, entry))
        if wait and (one_off or entry.at == 0.0) and entry.refresh is not None:
            # Not a poller (first sight, or nobody asked for a while): the snapshot may be far
            # behind (the POST that made the job saw it queued), so wait for the refresh.
            await asyncio.shield(entry.refresh)
            if entry.deleted:
                return None
            # Answered now: a caller asking again right after is polling, even if this refresh
            # (whose age counts from its start) took longer than `idle_s`.
            entry.asked = time.monotonic()
        return entry.snapshot  # stale by at most one refresh, which is then under way

    async def _refresh(self, job_id: str, entry: _Entry) -> None:
        started = time.monotonic()
        try:
            grown_to = entry.latest if entry.latest != entry.seen else ""
            if grown_to and entry.latest_status is not None:  # read in the watched history
                status, seen = entry.latest_status, grown_to
            else:
                status, seen = await self.query(job_id, entry.snapshot.status, entry.seen, grown_to)
            if seen and seen == entry.seen:
                # The same run at the same history length: what writes the row while a job runs
                # (its activities, a cancel, retry or delete through any replica) adds events,
                # so the row is the one held (a watched job that waits costs no database read).
                row: Job | None = entry.snapshot.job
            else:
                try:
                    row = await self.rows(job_id)
                except Exception as e:  # the workflow still knows its status: keep the last row
                    log.warning("catalog row of %s not refreshed: %s", job_id, e)
                    row = entry.snapshot.job
            if row is None or _ended(row):  # the catalog row answers from now on
                if row is None:
                    entry.deleted = True
                else:
                    entry.snapshot = Snapshot(row, row_status(row))
                self._drop(job_id, entry)
                return
            entry.snapshot, entry.at, entry.seen = Snapshot(row, status), started, seen
            if status.status in TERMINAL_STATUSES:  # the catalog row answers from now on
                self._drop(job_id, entry)
            elif seen and self.watch and not entry.watcher:
                self._start_watching(job_id, entry, self.watch)
        except Exception as e:  # the stale snapshot keeps answering; the next call retries
            log.warning("status of %s not refreshed: %s", job_id, e)
            entry.at = entry.at or time.monotonic() - self.max_age_s  # first waiters go on
        finally:
            entry.refresh = None

    async def _watched(self, job_id: str, entry: _Entry, watch: Watch) -> None:
        try:
            async with aclosing(watch(job_id, entry.seen)) as growth:
                async for latest, status in growth:
                    moved, entry.latest = latest != entry.latest, latest
                    entry.latest_status = status
                    idle = time.monotonic() - entry.asked > self.watch_idle_s
                    if idle or self._entries.get(job_id) is not entry:
                        break
                    if moved:  # the next long poll then returns at once what landed meanwhile
                        await asyncio.sleep(self.max_age_s)
        except Exception as e:  # refreshed by time again, then watched anew
            log.info("history of %s not watched: %s", job_id, e)
            entry.watch_after = time.monotonic() + self.watch_retry_s
        finally:
            entry.latest, entry.latest_status, entry.watcher = "", None, None

    def _start_watching(self, job_id: str, entry: _Entry, watch: Watch) -> None:
        if len(self._watchers) < self.max_watched and time.monotonic() >= entry.watch_after:
            entry.watcher = asyncio.create_task(self._watched(job_id, entry, watch))
            self._watchers.add(entry.watcher)
            entry.watcher.add_done_callback(self._watchers.discard)

    def _drop(self, job_id: str, entry: _Entry) -> None:
        if self._entries.get(job_id) is entry:
            del self._entries[job_id]
        if entry.watcher is not None:
            entry.watcher.cancel()

    def forget(self, job_id: str) -> None:
        """Drop a job's snapshot (after a cancel, retry or delete changed it)."""
        if (entry := self._entries.get(job_id)) is not None:
            self._drop(job_id, entry)

    async def aclose(self) -> None:
        """Stop watching (the process is stopping)."""
        watchers = list(self._watchers)
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
