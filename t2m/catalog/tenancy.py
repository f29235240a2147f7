"""Fair tenancy in the catalog: who owns a job, what a job's model calls have cost over all its
runs (booked as each call completes), and how many jobs an owner has active and has just created
(the quotas the API enforces)."""

from __future__ import annotations

import asyncpg

from t2m.catalog.db import unreachable_is_unavailable

RATE_WINDOW_S = 60.0
"""The creation-rate quota counts the jobs of the last minute."""


@unreachable_is_unavailable
class Tenancy:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def owner_of(self, job_id: str) -> str | None:
        return await self.pool.fetchval("SELECT owner FROM jobs WHERE id = $1", job_id)

    async def book_spend(self, job_id: str, cost_usd: float) -> None:
        """Add a completed model call's cost to the job's `booked_usd` (a job without a row —
        one the CLI started without a catalog — books nothing)."""
        await self.pool.execute(
            "UPDATE jobs SET booked_usd = booked_usd + $2 WHERE id = $1", job_id, cost_usd
        )

    async def activity_of(self, owner: str, window_s: float) -> tuple[int, int, float]:
        """The owner's active jobs (queued or running), jobs created in the last `window_s`
        seconds (deleted ones too: deleting cannot buy more), and the age in seconds of the
        oldest of those (0 when none)."""
        row = await self.pool.fetchrow(
            """SELECT count(*) FILTER (WHERE status IN ('queued', 'running')
                                         AND deleted_at IS NULL) AS active,
                      count(*) FILTER (WHERE created_at > now() - make_interval(secs => $2))
                        AS recent,
                      COALESCE(EXTRACT(EPOCH FROM now() - min(created_at) FILTER (
                        WHERE created_at > now() - make_interval(secs => $2))), 0) AS oldest
               FROM jobs WHERE owner = $1""",
            owner,
            window_s,
        )
        return int(row["active"]), int(row["recent"]), float(row["oldest"])
