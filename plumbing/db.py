"""Each service's own database: SQLite under COFFER_HOME by default, PostgreSQL
(asyncpg) in tests and production; same tables for both."""
from __future__ import annotations

from datetime import timezone

from sqlalchemy import DateTime, MetaData, event, inspect, text
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
    # No liveness ping per checkout (a round trip per request): a connection the server
    # closed (a restart) fails its statement, which makes the pool drop every older
    # connection; the API answers such a read again (http.py), consumers retry handlers.
    return create_async_engine(url, pool_size=5, max_overflow=5)


SCHEMA_LOCK_KEY = 0x436F66666572  # "Coffer": one schema change at a time per database


async def create_schema(engine: AsyncEngine, metadata: MetaData) -> None:
    """Create missing tables, and add the columns a newer release added to existing
    ones (new columns are nullable or have a server default, so this is all an
    upgrade needs; anything else would take a real migration)."""
    async with engine.begin() as conn:
        if is_postgres(engine):
            # two processes creating one schema at once (a service and the token CLI)
            # collide in PostgreSQL's catalog: one waits for the other's transaction
            await conn.execute(text("SELECT pg_advisory_xact_lock(%d)" % SCHEMA_LOCK_KEY))
        await conn.run_sync(metadata.create_all)
        await conn.run_sync(_add_missing_columns, metadata)


def _add_missing_columns(sync_conn, metadata: MetaData) -> None:
    inspector = inspect(sync_conn)
    for table in metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            kind = column.type.compile(dialect=sync_conn.dialect)
            default = f" DEFAULT {column.server_default.arg}" if column.server_default is not None else ""
            sync_conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}{default}'))


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"
