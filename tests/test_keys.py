"""`t2m keys create`: a key printed once, stored hashed, accepted by the API."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx

from t2m.catalog.api_keys import KeyStore


async def test_keys_create_prints_a_working_key(
    postgres_url: str, db_pool, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "t2m"), "keys", "create", "--user", "carol", "--admin",
        env=os.environ | {"T2M_DATABASE_URL": postgres_url, "T2M_DATA_DIR": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    key = out.decode().strip()
    assert key.startswith("t2m_") and "shown once" in err.decode()
    stored = await db_pool.fetchval("SELECT key_hash FROM api_keys WHERE user_id = 'carol'")
    assert stored and key not in stored  # only the hash is kept
    principal = await KeyStore(db_pool).verify(key)
    assert (principal.user, principal.admin) == ("carol", True)
    r = await api.get("/api/v1/jobs", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
