"""Built-in project tokens (the embedded default identity mode): random, shown
once, stored as SHA-256 hashes."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from .identity import Identity, with_implied
from .tables import projects, tokens

ROLES = ("admin", "member", "reader")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def ensure_project(conn: AsyncConnection, project_id: str) -> None:
    if not (await conn.execute(select(projects.c.id).where(projects.c.id == project_id))).first():
        await conn.execute(projects.insert().values(id=project_id, created_at=datetime.now(timezone.utc)))


async def create_token(conn: AsyncConnection, project_id: str, role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    await ensure_project(conn, project_id)
    token = "cft_" + secrets.token_urlsafe(32)
    await conn.execute(tokens.insert().values(token_hash=hash_token(token), project_id=project_id,
                                              role=role, created_at=datetime.now(timezone.utc)))
    return token


async def lookup(conn: AsyncConnection, token: str):
    return (await conn.execute(select(tokens.c.project_id, tokens.c.role)
                               .where(tokens.c.token_hash == hash_token(token)))).first()


class BuiltinTokens:
    """Validates built-in tokens against the API's database. Tokens are never
    revoked, so a valid one is remembered for the life of the process."""

    def __init__(self, store):
        self.store = store
        self._known: dict[str, Identity] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def identify(self, token: str) -> Identity | None:
        identity = self._known.get(token)
        if identity is None:
            async with self.store.engine.connect() as conn:
                row = await lookup(conn, token)
            if row is None:
                return None
            # built-in tokens name a project and a role, not a user: the token's hash prefix stands for it
            identity = self._known[token] = Identity(row.project_id, f"token-{hash_token(token)[:12]}",
                                                     with_implied([row.role]))
        return identity
