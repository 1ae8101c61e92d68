"""Guest logs on MariaDB: `general` (general_log) and `slow_query` (slow_query_log,
statements slower than COFFER_GUEST_LOG_LONG_QUERY_MS), each to its own file in the
instance's directory, switched live with SET GLOBAL and kept across restarts in
<instance>/logging.cnf, which the option file includes after the configuration
group's; `error` is the server's error log (<instance>/mariadb.log), a SYS log."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ...guest_logs import LONG_QUERY_MS, SYS, USER, GuestLogSource, LogDef
from . import users
from .conf import Paths
from .engine_user import chown_to_engine_user

SWITCHES = {"general": "general_log", "slow_query": "slow_query_log"}


def files(directory: Path) -> dict[str, Path]:
    return {"general": directory / "mariadb-general.log", "slow_query": directory / "mariadb-slow.log"}


def options(directory: Path, enabled: set[str]) -> dict:
    """The server options that keep the enabled logs on (and the others off)."""
    logs = files(directory)
    return {"general_log": "ON" if "general" in enabled else "OFF", "general_log_file": str(logs["general"]),
            "slow_query_log": "ON" if "slow_query" in enabled else "OFF",
            "slow_query_log_file": str(logs["slow_query"]), "long_query_time": LONG_QUERY_MS / 1000}


def write(paths: Paths, enabled: set[str]) -> None:
    target = paths.logging_options
    scratch = target.with_name(f".{target.name}.tmp")
    scratch.write_text("# the guest logs switched on, written by the Coffer agent; changes are overwritten\n"
                       "[mariadbd]\n" + "".join(f"{k} = {v}\n" for k, v in options(paths.directory, enabled).items()))
    scratch.chmod(0o644)
    os.replace(scratch, target)


class GuestLogMixin(GuestLogSource):
    def log_definitions(self) -> dict[str, LogDef]:
        logs = files(self.config.directory)
        return {"general": LogDef("general", USER, logs["general"]),
                "slow_query": LogDef("slow_query", USER, logs["slow_query"]),
                "error": LogDef("error", SYS, self.paths.log)}

    def _globals(self) -> dict[str, str]:
        conn = users.connect(str(self.paths.socket), self.admin)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT LOWER(VARIABLE_NAME), GLOBAL_VALUE FROM information_schema.SYSTEM_VARIABLES "
                            "WHERE VARIABLE_NAME IN ('GENERAL_LOG', 'SLOW_QUERY_LOG')")
                return dict(cur.fetchall())
        finally:
            conn.close()

    async def log_enabled(self, name: str) -> bool:
        return (await asyncio.to_thread(self._globals))[SWITCHES[name]] == "ON"

    def _switch(self, name: str, on: bool) -> None:
        current = self._globals()
        enabled = {log for log, switch in SWITCHES.items() if current[switch] == "ON"}
        enabled = enabled | {name} if on else enabled - {name}
        directory = self.config.directory
        for file in files(directory).values():  # the server (mysql) writes them
            file.touch()
            chown_to_engine_user(file)
        write(self.paths, enabled)
        wanted = options(directory, enabled)
        conn = users.connect(str(self.paths.socket), self.admin)
        try:
            with conn.cursor() as cur:
                # the file and threshold first, so the log starts where it should
                for option in (f"{SWITCHES[name]}_file", "long_query_time", SWITCHES[name]):
                    cur.execute(f"SET GLOBAL {option} = %s", (wanted[option],))
        finally:
            conn.close()

    async def switch_log(self, name: str, on: bool) -> bool:
        await asyncio.to_thread(self._switch, name, on)
        return False
