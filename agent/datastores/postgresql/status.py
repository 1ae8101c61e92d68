"""What the heartbeat reports about PostgreSQL."""
from __future__ import annotations

import psycopg


async def counters(conn: psycopg.AsyncConnection) -> tuple[int, int, list[int]]:
    """(client connections, committed transactions, pids of every server process
    but the postmaster): pg_stat_activity lists auxiliary processes too."""
    rows = await (await conn.execute(
        "SELECT pid, backend_type = 'client backend' FROM pg_stat_activity")).fetchall()
    xact = await (await conn.execute("SELECT coalesce(sum(xact_commit), 0) FROM pg_stat_database")).fetchone()
    return sum(1 for _pid, client in rows if client), int(xact[0]), [pid for pid, _client in rows]


async def gauges(conn: psycopg.AsyncConnection) -> tuple[float | None, int]:
    """(buffer cache hit ratio, size of every database), from pg_stat_database."""
    hit, read, size = await (await conn.execute(
        "SELECT coalesce(sum(blks_hit), 0), coalesce(sum(blks_read), 0), "
        "(SELECT coalesce(sum(pg_database_size(oid)), 0) FROM pg_database WHERE datallowconn) "
        "FROM pg_stat_database")).fetchone()
    return (int(hit) / (int(hit) + int(read)) if hit + read else None), int(size)
