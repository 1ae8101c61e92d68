"""What the heartbeat reports about MariaDB."""
from __future__ import annotations

COUNTERS = ("Threads_connected", "Binlog_commits")


def counters(conn) -> tuple[int, int]:
    """(client connections, committed write transactions).

    Connections: Threads_connected less the agent's own connection.
    Transactions: Binlog_commits, the transactions written to the binary log at
    commit, i.e. every committed transaction that changed data (autocommitted
    statements included). Read-only transactions are not counted (PostgreSQL's
    xact_commit counts them); MariaDB has no clean counter of them: Com_commit
    sees only explicit COMMITs, Handler_commit counts per storage engine and for
    internal work."""
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN (%s, %s)", COUNTERS)
        values = {name: int(value) for name, value in cur.fetchall()}
    return max(0, values.get("Threads_connected", 1) - 1), values.get("Binlog_commits", 0)


def gauges(conn) -> tuple[float | None, int]:
    """(InnoDB buffer pool hit ratio: logical reads not sent to disk, size of every
    table and index as information_schema counts them)."""
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN "
                    "('Innodb_buffer_pool_read_requests', 'Innodb_buffer_pool_reads')")
        values = {name: int(value) for name, value in cur.fetchall()}
        cur.execute("SELECT coalesce(sum(data_length + index_length), 0) FROM information_schema.tables")
        size = int(cur.fetchone()[0])
    requests = values.get("Innodb_buffer_pool_read_requests", 0)
    ratio = 1 - values.get("Innodb_buffer_pool_reads", 0) / requests if requests else None
    return ratio, size
