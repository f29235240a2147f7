"""Fair tenancy at the door: who may ask for which priority, how many jobs a user may have
running and start per minute, and what is left of a job's budget for its next run.

The rules (settings in `t2m.config`): priorities above `T2M_USER_MAX_PRIORITY` (default
`normal`) are an admin's, so no user can jump the queue past another's fair share; a user has at
most `T2M_MAX_ACTIVE_JOBS_PER_USER` jobs queued or running and creates at most
`T2M_MAX_JOBS_PER_MINUTE_PER_USER` a minute (429 with Retry-After beyond either); admins are not
held to the quotas. A job's budget covers all its runs: a retry runs on what the earlier runs
left, counting every model call the provider answered (booked as it completed, even after a
cancel).
"""

from __future__ import annotations

import math

from fastapi import HTTPException

from api.deps import AppState
from t2m.budget import usd
from t2m.catalog.db import Job
from t2m.catalog.tenancy import RATE_WINDOW_S, Tenancy
from t2m.vocabulary.request import PRIORITY_KEYS
from t2m.vocabulary.usage import UsageSummary

ACTIVE_RETRY_AFTER_S = 30
"""When a user is at the active-jobs quota, when to try again: jobs take tens of seconds."""


def too_many(detail: str, retry_after_s: float) -> HTTPException:
    return HTTPException(429, detail, {"Retry-After": str(max(1, math.ceil(retry_after_s)))})


def check_priority(state: AppState, priority: str, admin: bool) -> None:
    ceiling = state.settings.user_max_priority
    if not admin and PRIORITY_KEYS[priority] < PRIORITY_KEYS[ceiling]:
        raise HTTPException(
            403, f"priority {priority!r} is reserved to admins; ask for {ceiling!r} or lower"
        )


async def check_quotas(state: AppState, owner: str, *, creating: bool) -> None:
    """429 when `owner` is at the active-jobs quota or (`creating` a job) the creation rate."""
    settings = state.settings
    active, recent, oldest_s = await Tenancy(state.jobs.pool).activity_of(owner, RATE_WINDOW_S)
    if active >= settings.max_active_jobs_per_user:
        raise too_many(
            f"you have {active} jobs queued or running, the most a user may have"
            f" ({settings.max_active_jobs_per_user}); wait for one to finish or cancel one",
            ACTIVE_RETRY_AFTER_S,
        )
    if creating and recent >= settings.max_jobs_per_minute_per_user:
        raise too_many(
            f"you created {recent} jobs in the last minute, the most a user may"
            f" ({settings.max_jobs_per_minute_per_user}); try again shortly",
            RATE_WINDOW_S - oldest_s,
        )


def spent_usd(job: Job, usage: UsageSummary | None) -> float:
    """What the job's model calls have cost over all its runs: what the activities booked, or
    what the runs reported when that is more (a catalog without bookings)."""
    return max(job.booked_usd, usage.total.cost_usd if usage else 0.0)


def remaining_budget(job: Job, usage: UsageSummary | None) -> float | None:
    """The budget of the job's next run: its budget less what all its runs spent (None: no
    budget); 409 when nothing is left."""
    budget = job.request.max_cost_usd
    if budget is None:
        return None
    left = budget - spent_usd(job, usage)
    if left <= 0:
        raise HTTPException(
            409,
            f"job {job.id} has spent its budget of {usd(budget)} ({usd(spent_usd(job, usage))});"
            " submit it anew with a larger max_cost_usd",
        )
    return left
