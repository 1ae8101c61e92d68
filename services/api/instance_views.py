"""The instance views (GET /instances[/detail], GET /instances/{id}) kept in memory as
the JSON bodies served, so that a read costs no database round trip.

Never stale, whoever changes the state:
- a unit of work of this process that wrote one of the tables the views are made of
  (a request, a projection of an event, a periodic task) forgets every view once
  committed, before the request that made it answers;
- any other writer (another API process, a CLI, an operator's psql) is seen through
  a PostgreSQL trigger on the tables the views are made of, which NOTIFYs the project
  changed; each process LISTENs and forgets that project's views;
- a view read from the database while a change arrived is served but not kept.
The views are kept only while the LISTEN connection is up (PostgreSQL only): without
it another writer's change could go unseen, so every read goes to the database."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text

from plumbing.db import SCHEMA_LOCK_KEY, is_postgres
from plumbing.logs import log
from plumbing.outbox import Store

logger = logging.getLogger("api")
CHANNEL = "coffer_instance_views"
MAX_VIEWS = 1024  # then all are dropped (≤ ~20 MB): query strings and Host headers are the callers' to vary
RECONNECT_SECONDS = 1.0
CHECK_SECONDS = 5.0  # a LISTEN connection that no longer answers is treated as lost
LISTENER_NAME = "coffer-api-instance-views"  # the LISTEN connection, as pg_stat_activity names it

# every table a view is made of: instances (the rows, a primary's replicas) and
# configurations (a group's name in the detail view). The payload is the project whose
# views changed, or "" for all: a configuration (rare; may be shown on an instance an
# admin reached by id), a replica (its primary may be another project's), a truncation.
TABLES = frozenset({"instances", "configurations"})
TRIGGER_SQL = (f"""
CREATE OR REPLACE FUNCTION coffer_instance_views_changed() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' OR TG_TABLE_NAME <> 'instances' THEN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    PERFORM pg_notify('{CHANNEL}', CASE WHEN OLD.replica_of_id IS NULL THEN OLD.project_id ELSE '' END);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    PERFORM pg_notify('{CHANNEL}', CASE WHEN NEW.replica_of_id IS NULL THEN NEW.project_id ELSE '' END);
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql""", *(statement for table in sorted(TABLES) for statement in (
    f"CREATE OR REPLACE TRIGGER instance_views_rows AFTER INSERT OR UPDATE OR DELETE ON {table} "
    f"FOR EACH ROW EXECUTE FUNCTION coffer_instance_views_changed()",
    f"CREATE OR REPLACE TRIGGER instance_views_truncate AFTER TRUNCATE ON {table} "
    f"FOR EACH STATEMENT EXECUTE FUNCTION coffer_instance_views_changed()")))


class InstanceViews:
    """Response bodies by key: ("list", path with query, base URL) and ("show",
    instance id, base URL), each with the project owning it."""

    def __init__(self, store: Store | None):
        self.store = store
        self.listening = False
        self._views: dict[tuple, tuple[str, bytes]] = {}  # key -> (project, body)
        self._changes = 0  # counts every forgetting: a read that saw it change keeps nothing
        self._task: asyncio.Task | None = None

    # -- reading -------------------------------------------------------------
    def get(self, key: tuple) -> tuple[str, bytes] | None:
        return self._views.get(key) if self.listening else None

    def moment(self) -> int:
        """Take before reading the database; hand to `keep`."""
        return self._changes

    def keep(self, moment: int, key: tuple, project: str, body: bytes) -> None:
        """Keep a view read from the database unless something changed since `moment`."""
        if not self.listening or moment != self._changes:
            return
        if len(self._views) >= MAX_VIEWS:
            self._views.clear()
        self._views[key] = (project, body)

    # -- forgetting ----------------------------------------------------------
    def committed(self, tables: frozenset[str]) -> None:
        """A unit of work of this process committed, having written `tables`."""
        if not TABLES.isdisjoint(tables):
            self.forget_all()

    def forget_all(self) -> None:
        self._changes += 1
        self._views.clear()

    def forget_project(self, project: str) -> None:
        self._changes += 1
        for key in [k for k, (owner, _) in self._views.items() if owner == project]:
            del self._views[key]

    def _notified(self, _conn, _pid, _channel, project: str) -> None:
        if project:
            self.forget_project(project)
        else:
            self.forget_all()

    # -- the LISTEN connection ---------------------------------------------------
    async def start(self) -> None:
        if self.store is not None and is_postgres(self.store.engine):
            self._task = asyncio.create_task(self._listen_forever(), name="instance-views-listen")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _install_trigger(self) -> None:
        async with self.store.engine.begin() as conn:
            # one schema change at a time: API processes starting together collide otherwise
            await conn.execute(text("SELECT pg_advisory_xact_lock(%d)" % SCHEMA_LOCK_KEY))
            for statement in TRIGGER_SQL:
                await conn.execute(text(statement))

    async def _listen_forever(self) -> None:
        import asyncpg
        dsn = self.store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        installed = False
        while True:
            conn = None
            try:
                if not installed:
                    await self._install_trigger()
                    installed = True
                conn = await asyncpg.connect(dsn, server_settings={"application_name": LISTENER_NAME})
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn: lost.set())
                await conn.add_listener(CHANNEL, self._notified)
                self.forget_all()  # whatever changed while nobody listened
                self.listening = True
                log(logger, logging.INFO, "instance views kept in memory", channel=CHANNEL)
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), CHECK_SECONDS)
                    except asyncio.TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=CHECK_SECONDS)
                log(logger, logging.WARNING, "instance views not kept: the LISTEN connection closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reads go to the database until it is back
                log(logger, logging.WARNING, "instance views not kept: no LISTEN connection", error=repr(exc))
            finally:
                self.listening = False
                self.forget_all()
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(RECONNECT_SECONDS)


def serve(body: bytes) -> web.Response:
    """A kept view as web.json_response would have answered it."""
    return web.Response(body=body, content_type="application/json", charset="utf-8")
