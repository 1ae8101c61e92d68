"""Built-in project tokens: random, shown once, stored as SHA-256 hashes."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

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
