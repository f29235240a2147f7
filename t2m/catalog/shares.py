"""Share links: a random token that lets anyone watch one job's video, until its owner revokes it.

The token is the whole credential (like an unlisted link), so it is long (256 bits) and it opens
nothing but that job's media; a revoked link, or one whose job was deleted, finds nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from t2m.catalog.db import unreachable_is_unavailable


@dataclass(frozen=True)
class Share:
    token: str
    job_id: str
    created_by: str
    created_at: datetime


@unreachable_is_unavailable
class ShareStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, job_id: str, user: str) -> tuple[Share, bool]:
        """The job's live link, made now if it has none; True when it was made now."""
        row = await self.pool.fetchrow(
            """INSERT INTO shares (token, job_id, created_by) VALUES ($1, $2, $3)
               ON CONFLICT (job_id) WHERE revoked_at IS NULL DO NOTHING
               RETURNING token, job_id, created_by, created_at""",
            secrets.token_urlsafe(32),
            job_id,
            user,
        )
        if row is not None:
            return Share(**row), True
        live = await self.live(job_id)
        if live is None:  # revoked between the two statements: make one anew
            return await self.create(job_id, user)
        return live, False

    async def live(self, job_id: str) -> Share | None:
        """The job's link that has not been revoked, if any."""
        row = await self.pool.fetchrow(
            "SELECT token, job_id, created_by, created_at FROM shares"
            " WHERE job_id = $1 AND revoked_at IS NULL",
            job_id,
        )
        return Share(**row) if row else None

    async def revoke(self, job_id: str) -> bool:
        """Revoke the job's live link; False when it had none."""
        done = await self.pool.execute(
            "UPDATE shares SET revoked_at = now() WHERE job_id = $1 AND revoked_at IS NULL",
            job_id,
        )
        return done != "UPDATE 0"

    async def job_of(self, token: str) -> str | None:
        """The job a live link opens: None when the token is unknown, revoked, or its job
        was deleted."""
        return await self.pool.fetchval(
            """SELECT s.job_id FROM shares s JOIN jobs j ON j.id = s.job_id
               WHERE s.token = $1 AND s.revoked_at IS NULL AND j.deleted_at IS NULL""",
            token,
        )
