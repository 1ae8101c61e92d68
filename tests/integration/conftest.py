"""An API application served in the test process over a real socket, with its own
SQLite database and no bus: for what needs no other service (pagination, rate
limits)."""
from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import psycopg
import pytest
from aiohttp.test_utils import TestServer
from opentelemetry import trace

from plumbing.db import create_schema, make_engine
from plumbing.outbox import Store
from services.api import ratelimit
from services.api.auth import create_token
from services.api.http import build_app
from services.api.tables import instances, metadata, operations


@dataclass
class InProcessApi:
    session: aiohttp.ClientSession
    store: Store

    async def token(self, project: str, role: str = "member") -> str:
        async with self.store.engine.begin() as conn:
            return await create_token(conn, project, role)


@pytest.fixture
def inprocess_api(tmp_path):
    """A factory: `async with inprocess_api(limiter) as api` (limiter: None for none)."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def serve(limiter: ratelimit.RateLimiter | None = None):
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'api.db'}")
        await create_schema(engine, metadata)
        store = Store(engine, metadata, "api")
        app = build_app(store, trace.get_tracer("test"), rate_limiter=limiter or ratelimit.RateLimiter([]))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession(str(server.make_url(""))) as session:
                yield InProcessApi(session, store)
        finally:
            await server.close()
            await engine.dispose()
    return serve


@pytest.fixture
async def api_store(service_databases, tmp_path):
    """The API's tables alone (no application), on the run's PostgreSQL or SQLite,
    without instances or operations left by an earlier test."""
    url = (service_databases.format(service="plumbing") if service_databases
           else f"sqlite+aiosqlite:///{tmp_path / 'api.db'}")
    engine = make_engine(url)
    await create_schema(engine, metadata)
    async with engine.begin() as conn:
        await conn.execute(operations.delete())
        await conn.execute(instances.delete())
    yield Store(engine, metadata, source="api")
    await engine.dispose()


PROJECT, OTHER = "pg-api-a", "pg-api-b"


@pytest.fixture
async def pg_api(api_store):
    """An aiohttp session on an in-process API over the run's PostgreSQL (no bus):
    .app, .store, and .tokens[(project, role)] for PROJECT and OTHER, member and admin."""
    if api_store.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL")
    app = build_app(api_store, trace.get_tracer("test"), rate_limiter=ratelimit.RateLimiter([]))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with api_store.engine.begin() as conn:
        tokens = {(project, role): await create_token(conn, project, role)
                  for project in (PROJECT, OTHER) for role in ("member", "admin")}
    try:
        async with aiohttp.ClientSession(str(server.make_url(""))) as session:
            session.app, session.store, session.tokens = app, api_store, tokens
            yield session
    finally:
        await server.close()


def another_writer(url, statement: str) -> None:
    """A statement committed by another client of the database (not the API's pool)."""
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)
