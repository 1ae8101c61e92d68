"""Configuration groups on PostgreSQL: the group's file is rewritten and the server
told to reload it. PostgreSQL itself says what it could not take (pg_file_settings)
and what waits for a restart (pg_settings.pending_restart)."""
from __future__ import annotations

import asyncio
import time

from ...configuration import Configurable
from ...engine_user import EngineCommandError
from . import group_file, users

RELOAD_SECONDS = 10
POLL_SECONDS = 0.02


class ConfigurationMixin(Configurable):
    async def apply_configuration(self, values: dict, previous: dict) -> bool:
        await asyncio.to_thread(group_file.write, self.data, values)
        async with await users.connect(str(self.socket_dir), self.config.port) as conn:
            before = (await (await conn.execute("SELECT pg_conf_load_time()")).fetchone())[0]
            await conn.execute("SELECT pg_reload_conf()")
        async with await self._reloaded_session(before) as conn:
            # a value it could not take and that does not merely wait for a restart is refused
            refused = await (await conn.execute(
                "SELECT f.name, f.setting FROM pg_file_settings f JOIN pg_settings s ON lower(s.name) = lower(f.name) "
                "WHERE f.sourcefile LIKE %s AND f.error IS NOT NULL AND NOT s.pending_restart",
                (f"%/{group_file.NAME}",))).fetchall()
            if refused:
                raise EngineCommandError("PostgreSQL refused " + ", ".join(
                    f"{name} = {setting!r}" for name, setting in refused) + " (its log says why)")
            pending = await (await conn.execute("SELECT count(*) FROM pg_settings WHERE pending_restart")).fetchone()
        return pending[0] > 0

    async def _reloaded_session(self, before):
        """A session started after the postmaster reread its files (sessions inherit
        what it loaded; the reload is asynchronous)."""
        deadline = time.monotonic() + RELOAD_SECONDS
        while True:
            conn = await users.connect(str(self.socket_dir), self.config.port)
            loaded = (await (await conn.execute("SELECT pg_conf_load_time()")).fetchone())[0]
            if loaded > before:
                return conn
            await conn.close()
            if time.monotonic() > deadline:
                raise EngineCommandError(f"PostgreSQL did not reload its configuration within {RELOAD_SECONDS} s")
            await asyncio.sleep(POLL_SECONDS)

    async def running_configuration(self, names: list[str]) -> dict[str, str]:
        async with await users.connect(str(self.socket_dir), self.config.port) as conn:
            rows = await (await conn.execute("SELECT lower(name), setting FROM pg_settings WHERE lower(name) = ANY(%s)",
                                             ([n.lower() for n in names],))).fetchall()
        return dict(rows)
