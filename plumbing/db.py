"""Each service's own database: SQLite under COFFER_HOME by default, PostgreSQL
(asyncpg) in tests and production; same tables for both."""
from __future__ import annotations

from datetime import timezone

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.types import TypeDecorator
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


class UtcDateTime(TypeDecorator):
    """A UTC timestamp that reads back zone-aware from SQLite too (SQLite keeps
    no zone), so every service compares datetimes the same way on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        # One connection: SQLite has one writer, and connections that contend for its
        # lock sleep in its busy handler (up to 100 ms a time) instead of queueing.
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True)


async def create_schema(engine: AsyncEngine, metadata: MetaData) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"
