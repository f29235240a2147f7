"""API keys in the catalog: random tokens shown once, only their SHA-256 stored, and the
`Principal` (user, admin) a verified key stands for."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import asyncpg

from t2m.catalog.db import unreachable_is_unavailable
from t2m.vocabulary.text import user_name


@dataclass(frozen=True)
class Principal:
    user: str
    admin: bool


def hash_key(key: str) -> str:
    """What the catalog stores of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


@unreachable_is_unavailable
class KeyStore:
    """API keys are random tokens shown once; only their SHA-256 is stored."""

    PREFIX = "t2m_"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, user: str, admin: bool = False) -> str:
        """A new key for `user` (ValueError if the name is not a valid user name)."""
        user_name(user)
        key = self.PREFIX + secrets.token_urlsafe(32)
        await self.pool.execute(
            "INSERT INTO api_keys (user_id, is_admin, key_hash) VALUES ($1, $2, $3)",
            user,
            admin,
            hash_key(key),
        )
        return key

    async def verify(self, key: str) -> Principal | None:
        row = await self.pool.fetchrow(
            "SELECT user_id, is_admin FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            hash_key(key),
        )
        return Principal(row["user_id"], row["is_admin"]) if row else None
