"""The API's pool pings no connection before using it: when the database has closed
the pooled connections (a restart, an operator's pg_terminate_backend), a read meets
a dead one, the pool drops them all and the read is answered from a fresh one; the
caller sees nothing of it."""
from __future__ import annotations

import asyncio

from tests.integration.conftest import PROJECT, another_writer

CLOSE_THE_POOL = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                  " AND pid <> pg_backend_pid() AND backend_type = 'client backend'")


async def test_reads_are_answered_after_the_database_closed_the_pooled_connections(pg_api):
    headers = {"X-Auth-Token": pg_api.tokens[(PROJECT, "member")]}
    # several connections in the pool, each then closed by the server
    answers = await asyncio.gather(*(pg_api.get(f"/v1.0/{PROJECT}/flavors", headers=headers) for _ in range(4)))
    assert all(a.status == 200 for a in answers)
    pooled = pg_api.store.engine.pool.checkedin()
    assert pooled >= 1
    await asyncio.to_thread(another_writer, pg_api.store.engine.url, CLOSE_THE_POOL)
    for _ in range(pooled + 1):
        async with pg_api.get(f"/v1.0/{PROJECT}/flavors", headers=headers) as answer:
            assert answer.status == 200, await answer.text()
