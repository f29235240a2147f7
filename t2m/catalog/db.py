"""The job catalog in PostgreSQL (asyncpg), with versioned plain-SQL migrations
(API keys are `t2m.catalog.api_keys`; the embedded server, for when no database is configured, is
`t2m.catalog.local_postgres`).

`t2m/catalog/migrations/NNN_name.sql` files are applied in order, once each, inside a transaction, at
start-up (guarded by an advisory lock so several processes can start together).
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from pydantic import BaseModel

from t2m.catalog.migrations import SchemaBehind, migrate, pending
from t2m.catalog.reuse import fingerprint
from t2m.errors import ErrorKind, T2mError
from t2m.vocabulary.job import TERMINAL_STATUSES, JobRecord, JobStatus
from t2m.vocabulary.plan import Artifacts, Checkpoint
from t2m.vocabulary.request import Regeneration, VideoRequest
from t2m.vocabulary.usage import UsageSummary, usage_summary

M = TypeVar("M", bound=BaseModel)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def connect(url: str, migrate_schema: bool = True) -> asyncpg.Pool:
    """A pool on the catalog. With `migrate_schema` pending migrations are applied first (the
    embedded stack, the set-up Job); without, the schema must already be current (deployed API
    and workers, whose role needs no DDL rights): SchemaBehind names what is missing."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=10, init=_init_connection)
    try:
        if migrate_schema:
            await migrate(pool)
        elif missing := await pending(pool):
            raise SchemaBehind(
                f"the catalog lacks migrations {', '.join(missing)}: run the set-up step"
                " (deploy/t2m_setup.py, the t2m-setup Job) before this release"
            )
    except BaseException:
        await pool.close()
        raise
    return pool


@dataclass
class Job:
    """A catalog row, its JSON columns parsed into the vocabulary's models."""

    id: str
    owner: str
    request: VideoRequest
    priority: str
    status: str
    error: str | None
    progress: JobStatus | None
    artifacts: Artifacts | None
    checkpoint: Checkpoint | None
    usage: UsageSummary | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    run_started_at: datetime
    """When the current run started: the job's creation, then its last retry or next version."""
    previous_artifacts: Artifacts | None = None
    """The video's version before the current one, while it is kept (see `Regeneration`)."""
    usage_before: UsageSummary | None = None
    """Model usage of the job's earlier runs (each retry starts a run of its own)."""
    booked_usd: float = 0.0
    """What its model calls have cost over all its runs, as the model activities booked them."""

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Job:
        def parse(model: type[M], column: str) -> M | None:
            return model.model_validate(row[column]) if row[column] is not None else None

        return cls(
            id=row["id"],
            owner=row["owner"],
            request=VideoRequest.model_validate(row["request"]),
            priority=row["priority"],
            status=row["status"],
            error=row["error"],
            progress=parse(JobStatus, "progress"),
            artifacts=parse(Artifacts, "artifacts"),
            checkpoint=parse(Checkpoint, "checkpoint"),
            usage=parse(UsageSummary, "usage"),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            completed_at=row["completed_at"],
            run_started_at=row["run_started_at"],
            previous_artifacts=parse(Artifacts, "previous_artifacts"),
            usage_before=parse(UsageSummary, "usage_before"),
            booked_usd=row["booked_usd"],
        )


_JOB_COLUMNS = ", ".join(Job.__dataclass_fields__)


def _json(model: BaseModel | None) -> dict[str, Any] | None:
    return model.model_dump(mode="json") if model is not None else None


_UPSERT = """
INSERT INTO jobs (id, owner, request, status, error, artifacts, checkpoint, usage, completed_at,
                  progress, fingerprint, run_id, seq)
VALUES ($1, $8, $9, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END, $10, $11, $13, $14)
ON CONFLICT (id) DO UPDATE SET status = $2, error = $3, progress = $10,
    artifacts = COALESCE($4, jobs.artifacts),
    checkpoint = COALESCE($5, jobs.checkpoint),
    usage = COALESCE($6, jobs.usage), updated_at = now(),
    completed_at = CASE WHEN $7 THEN now() END, fingerprint = $11,
    previous_artifacts = CASE WHEN $4 IS NOT NULL THEN $12 ELSE jobs.previous_artifacts END,
    run_id = COALESCE($13, jobs.run_id),
    seq = CASE WHEN $13 IS NULL THEN jobs.seq
               WHEN jobs.run_id = $13 THEN GREATEST(jobs.seq, $14) ELSE $14 END,
    retired_runs = CASE WHEN jobs.run_id <> $13 THEN jobs.retired_runs || jobs.run_id
                        ELSE jobs.retired_runs END"""
_RECORD = (
    _UPSERT
    + """
WHERE $13::text IS NULL
   OR (NOT ($13 = ANY (jobs.retired_runs))
       AND (jobs.run_id IS DISTINCT FROM $13
            OR (($14 = 0 OR $14 > jobs.seq)
                AND NOT (jobs.status IN ('completed', 'failed', 'cancelled') AND NOT $7))))"""
)
_UNCLAIMED = "jobs.status = 'queued' AND jobs.run_id IS NULL"
"""A row whose run `requeue` let go of, and that no run has taken over since."""


def _record_args(rec: JobRecord) -> tuple[Any, ...]:
    return (
        rec.job_id,
        rec.status,
        rec.error,
        _json(rec.artifacts),
        _json(rec.checkpoint),
        _json(usage_summary(rec.progress.usage)),
        rec.status in TERMINAL_STATUSES,
        rec.owner,
        _json(rec.request),
        _json(rec.progress),
        # A regenerated video is not what the request alone makes: no whole-result reuse.
        fingerprint(rec.request) if rec.request.regenerate is None and rec.reusable else None,
        _json(rec.request.regenerate.previous if rec.request.regenerate else None),
    )


class IdempotencyConflict(T2mError):
    """A job id (an owner's Idempotency-Key) came back for another request or a deleted job."""

    def __init__(self, job_id: str, *, deleted: bool) -> None:
        reason = "was deleted" if deleted else "was created by a different request"
        super().__init__(f"job {job_id}, which this Idempotency-Key stands for, {reason}")
        self.job_id = job_id
        self.deleted = deleted


class CatalogUnavailable(T2mError, RuntimeError):
    """The database cannot be reached (down, restarting, its socket gone)."""


class CatalogRejected(T2mError, ValueError):
    """The database refused a write for what it holds (invalid data, a violated constraint):
    writing it again cannot succeed."""

    kind = ErrorKind.CATALOG_REJECTED


C = TypeVar("C", bound=type)


def unreachable_is_unavailable(cls: C) -> C:
    """Every coroutine method of `cls` raises CatalogUnavailable when the database cannot be
    reached: a refused or missing socket surfaces as a plain OSError, which callers could not
    tell from any other I/O error."""
    for name, fn in list(vars(cls).items()):
        if inspect.iscoroutinefunction(fn) and not name.startswith("_"):

            def wrap(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
                @functools.wraps(fn)
                async def call(*args: Any, **kwargs: Any) -> Any:
                    try:
                        return await fn(*args, **kwargs)
                    except (OSError, asyncpg.CannotConnectNowError) as e:
                        raise CatalogUnavailable(f"the database is unreachable: {e}") from e

                return call

            setattr(cls, name, wrap(fn))
    return cls


@unreachable_is_unavailable
class JobStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(
        self,
        job_id: str,
        request: VideoRequest,
        priority: str,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> Job:
        """Insert the job, or return the existing one with the same id.

        An existing job is returned only if it is the same request (same `request_hash`, when
        both have one) and has not been deleted; otherwise IdempotencyConflict.
        """
        row = await self.pool.fetchrow(
            f"""INSERT INTO jobs (id, owner, request, priority, idempotency_key, request_hash)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id
                RETURNING {_JOB_COLUMNS}, request_hash, deleted_at""",
            job_id,
            request.owner,
            _json(request),
            priority,
            idempotency_key,
            request_hash,
        )
        if row["deleted_at"] is not None:
            raise IdempotencyConflict(job_id, deleted=True)
        if None not in (request_hash, row["request_hash"]) and row["request_hash"] != request_hash:
            raise IdempotencyConflict(job_id, deleted=False)
        return Job.from_row(row)

    async def record(self, rec: JobRecord, run_id: str | None = None) -> bool:
        """Record a state change reported by the workflow (start or any terminal state); return
        whether it was written. Jobs started outside the API (e.g. by the CLI) get their row here.

        A write of a workflow run (`run_id`) is guarded, so a late one (an earlier attempt that hung)
        never replaces a newer one: within the row's run it lands only with a larger `seq` (0:
        unordered) and never turns a finished row (completed, failed, cancelled) back; another run
        takes the row over (a reset's run; a retry's, after `requeue` let go of the last) unless
        the row has already moved on from it. A write without a run (the API's, an admin's) is
        not guarded. CatalogRejected when the database refuses the data itself.
        """
        return await self._upsert(_RECORD, rec, run_id, rec.seq)

    async def settle(self, rec: JobRecord) -> bool:
        """Write `rec`, the outcome of the run a `requeue` let go of, while no run has taken the
        row over: the run it was queued for never started (its start failed, or the API stopped
        before it), and the row would otherwise say queued for good. Whether it was written."""
        return await self._upsert(f"{_UPSERT} WHERE {_UNCLAIMED}", rec, None, 0)

    async def _upsert(self, sql: str, rec: JobRecord, run_id: str | None, seq: int) -> bool:
        """Run one of the record upserts; whether it wrote the row. CatalogRejected when the
        database refuses the data itself."""
        try:
            status = await self.pool.execute(sql, *_record_args(rec), run_id, seq)
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as e:
            raise CatalogRejected(f"job {rec.job_id}: {type(e).__name__}: {e}") from e
        return status.endswith(" 1")

    async def finished_like(self, req: VideoRequest, any_owner: bool = False) -> Job | None:
        """The latest completed job of the same owner (of anyone's, given `any_owner`) whose
        request makes the same video as `req`, if any."""
        row = await self.pool.fetchrow(
            f"""SELECT {_JOB_COLUMNS} FROM jobs
                WHERE fingerprint = $1 AND status = 'completed' AND deleted_at IS NULL
                  AND artifacts IS NOT NULL AND ($2 OR owner = $3)
                ORDER BY completed_at DESC LIMIT 1""",
            fingerprint(req),
            any_owner,
            req.owner,
        )
        return Job.from_row(row) if row else None

    async def get(self, job_id: str) -> Job | None:
        row = await self.pool.fetchrow(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = $1 AND deleted_at IS NULL", job_id
        )
        return Job.from_row(row) if row else None

    async def list(
        self,
        owner: str | None,
        *,
        status: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[Job], int]:
        """Jobs newest first, with the total count matching the filters; owner None = everyone's."""
        where, args = ["deleted_at IS NULL"], []
        for clause, value in (
            ("owner = ${}", owner),
            ("status = ${}", status),
            ("created_at >= ${}", created_after),
            ("created_at < ${}", created_before),
        ):
            if value is not None:
                args.append(value)
                where.append(clause.format(len(args)))
        cond = " AND ".join(where)
        total = await self.pool.fetchval(f"SELECT count(*) FROM jobs WHERE {cond}", *args)
        rows = await self.pool.fetch(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {cond} ORDER BY created_at DESC, id"
            f" LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
            *args,
            limit,
            offset,
        )
        return [Job.from_row(r) for r in rows], total

    async def requeue(
        self,
        job_id: str,
        usage_before: UsageSummary | None = None,
        seen: datetime | None = None,
        regenerate: Regeneration | None = None,
    ) -> bool:
        """A retried job is queued again, its run starting now (`run_started_at`); its finished
        work stays in `checkpoint`. Given `usage_before` (the usage of its runs so far), the row
        starts a run afresh: no usage or progress of its own until the new run records them. The run that wrote the row last is
        let go of: the next run takes the row over, and a late write of the last is refused.
        Given `seen` (the row's `updated_at` when the caller decided), only a row nobody wrote
        since is requeued, so of two requests running a job again at once one does, and the
        other never lets go of the run the first started. Given `regenerate`, the row's request
        says the next run makes that next version (what a retry of the run then makes again,
        and the version a redo while it runs answers). Whether it was requeued."""
        done = await self.pool.execute(
            "UPDATE jobs SET status = 'queued', error = NULL, completed_at = NULL,"
            " retired_runs = retired_runs || array_remove(ARRAY[run_id], NULL),"
            " run_id = NULL, seq = 0,"
            " usage_before = COALESCE($2, usage_before),"
            " usage = CASE WHEN $2::jsonb IS NULL THEN usage END,"
            " progress = CASE WHEN $2::jsonb IS NULL THEN progress END,"
            " request = CASE WHEN $4::jsonb IS NULL THEN request"
            "                ELSE jsonb_set(request, '{regenerate}', $4) END,"
            " updated_at = now(), run_started_at = now()"
            " WHERE id = $1 AND ($3::timestamptz IS NULL OR updated_at = $3)",
            job_id,
            _json(usage_before),
            seen,
            _json(regenerate),
        )
        return done.endswith(" 1")

    async def unqueue(self, job: Job) -> bool:
        """Undo `requeue` when the run it queued the job for could not be started: the row says
        again what it said when it was read (`job`), instead of queued with no run for good. Only
        while no run has taken the row over (a start that timed out may yet have started one).
        Whether it was put back."""
        done = await self.pool.execute(
            "UPDATE jobs SET status = $2, error = $3, completed_at = $4, progress = $5,"
            " usage = $6, usage_before = $7, request = $8, run_started_at = $9, updated_at = now()"
            f" WHERE id = $1 AND {_UNCLAIMED}",
            job.id,
            job.status,
            job.error,
            job.completed_at,
            _json(job.progress),
            _json(job.usage),
            _json(job.usage_before),
            _json(job.request),
            job.run_started_at,
        )
        return done.endswith(" 1")

    async def delete(self, job_id: str) -> None:
        await self.pool.execute(
            "UPDATE jobs SET deleted_at = now(), updated_at = now() WHERE id = $1", job_id
        )
