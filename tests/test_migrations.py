"""Only the set-up step migrates the catalog: a deployed process (`T2M_MIGRATE_CATALOG=false`)
refuses a schema that lacks this release's migrations, naming them, and works on a current one.
Real PostgreSQL."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from t2m.catalog import db
from t2m.catalog.migrations import migrations


async def test_a_process_that_does_not_migrate_refuses_a_schema_behind_and_serves_a_current_one(
    postgres_url: str, db_pool: asyncpg.Pool
) -> None:
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    await db_pool.execute(f"CREATE DATABASE {name}")
    fresh = postgres_url.replace("/postgres?", f"/{name}?")
    with pytest.raises(db.SchemaBehind) as refused:
        await db.connect(fresh, migrate_schema=False)
    assert all(file in str(refused.value) for _, file, _ in migrations())
    assert "run the set-up step" in str(refused.value)

    set_up = await db.connect(fresh)  # the set-up step applies every migration
    await set_up.close()
    deployed = await db.connect(fresh, migrate_schema=False)
    try:
        assert await db.pending(deployed) == []
        assert await deployed.fetchval("SELECT count(*) FROM jobs") == 0
    finally:
        await deployed.close()
