"""What the heartbeat reports about PostgreSQL."""
from __future__ import annotations

import psycopg


async def counters(conn: psycopg.AsyncConnection) -> tuple[int, int]:
    row = await (await conn.execute(
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),"
        " (SELECT coalesce(sum(xact_commit), 0) FROM pg_stat_database)")).fetchone()
    return int(row[0]), int(row[1])
