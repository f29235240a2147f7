"""The embedded PostgreSQL `t2m up` runs: no TCP listener, and a password on its Unix socket."""

from __future__ import annotations

import stat
from pathlib import Path

import asyncpg
import pytest

from t2m.catalog import local_postgres


async def test_the_embedded_database_requires_its_generated_password(tmp_path: Path) -> None:
    server, url = await local_postgres.start_embedded(tmp_path)
    try:
        secret = tmp_path / "postgres.password"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        password = secret.read_text().strip()
        assert len(password) >= 32 and f":{password}@" in url and "?host=" in url

        conn = await asyncpg.connect(url)
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SHOW listen_addresses") == ""  # the socket only
        await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(server.get_uri())  # what trust auth used to let in
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(url.replace(password, "guess"))

        again, url_again = await local_postgres.start_embedded(
            tmp_path
        )  # a restart keeps the password
        assert url_again == url
    finally:
        server.cleanup()
