"""The catalog's schema: numbered SQL files applied in order, once each, under an advisory lock
(so many processes starting at once apply each file once). Deployed API and worker processes
only check that the schema is current (`pending`); the set-up step applies it (`migrate`)."""

from __future__ import annotations

from importlib import resources

import asyncpg

MIGRATION_LOCK = 7_281_001


class SchemaBehind(RuntimeError):
    """The catalog's schema lacks migrations this release needs (run the set-up step)."""


def migrations() -> list[tuple[int, str, str]]:
    files = sorted(
        (f for f in resources.files(__name__).iterdir() if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    return [(int(f.name.split("_", 1)[0]), f.name, f.read_text()) for f in files]


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply pending migrations; return the names applied."""
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations():
            if version not in done:
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
                applied.append(name)
    return applied


async def pending(pool: asyncpg.Pool) -> list[str]:
    """The migrations not yet applied (all of them on an empty database)."""
    async with pool.acquire() as conn:
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        done = (
            {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            if exists
            else set()
        )
    return [name for version, name, _ in migrations() if version not in done]
