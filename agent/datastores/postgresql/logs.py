"""Guest logs on PostgreSQL. The postmaster writes one server log (<instance>/postgresql.log):
`general` (every statement, log_statement = all) and `slow_query` (statements slower
than COFFER_GUEST_LOG_LONG_QUERY_MS, log_min_duration_statement) switch what goes
into it, live, through ALTER SYSTEM (kept across restarts in postgresql.auto.conf);
`error` is that log as a SYS log, always on."""
from __future__ import annotations

from ...guest_logs import LONG_QUERY_MS, SYS, USER, GuestLogSource, LogDef
from . import users

# log -> (parameter, value when on); off = the parameter's value from the files again
SETTINGS = {"general": ("log_statement", "all"), "slow_query": ("log_min_duration_statement", str(LONG_QUERY_MS))}


def is_on(name: str, value: str) -> bool:
    value = value.strip().lower()
    return value == "all" if name == "general" else not value.startswith("-")


class GuestLogMixin(GuestLogSource):
    def log_definitions(self) -> dict[str, LogDef]:
        server_log = self.config.directory / "postgresql.log"
        return {"general": LogDef("general", USER, server_log), "slow_query": LogDef("slow_query", USER, server_log),
                "error": LogDef("error", SYS, server_log)}

    async def log_enabled(self, name: str) -> bool:
        """The server's setting as its files give it (the agent's own session runs with
        these logs off, so its pg_settings would not tell): the last applied line of
        the files, else the built-in default."""
        parameter = SETTINGS[name][0]
        async with await users.connect(str(self.socket_dir), self.config.port) as conn:
            row = await (await conn.execute(
                "SELECT COALESCE((SELECT setting FROM pg_file_settings WHERE name = %s AND applied "
                "ORDER BY seqno DESC LIMIT 1), (SELECT boot_val FROM pg_settings WHERE name = %s))",
                (parameter, parameter))).fetchone()
        return is_on(name, row[0])

    async def switch_log(self, name: str, on: bool) -> bool:
        parameter, value = SETTINGS[name]
        async with await users.connect(str(self.socket_dir), self.config.port) as conn:
            before = (await (await conn.execute("SELECT pg_conf_load_time()")).fetchone())[0]
            if on:  # the parameter is one of ours, the value a constant: no quoting question
                await conn.execute(f"ALTER SYSTEM SET {parameter} = '{value}'")
            else:
                await conn.execute(f"ALTER SYSTEM RESET {parameter}")
            await conn.execute("SELECT pg_reload_conf()")
        async with await self._reloaded_session(before):
            pass
        return False
