"""Guest logs on Redis, which has what Redis has: `slow_query` is Redis's SLOWLOG
(commands slower than COFFER_GUEST_LOG_LONG_QUERY_MS; off = slowlog-log-slower-than
-1), switched live with CONFIG SET and kept across restarts in <instance>/logging.conf,
which redis.conf includes last. SLOWLOG lives in the server's memory: the agent
appends its new entries to <instance>/redis-slowlog.log, one line each, whenever the
log is shown or published. `error` is the server's log file (<instance>/redis.log),
a SYS log. Redis has no general query log (MONITOR is a stream, not a log)."""
from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime, timezone

from ...guest_logs import LONG_QUERY_MS, SYS, USER, GuestLogSource, LogDef

THRESHOLD = "slowlog-log-slower-than"
OFF = "-1"
SLOWLOG_FILE, CURSOR_FILE = "redis-slowlog.log", "redis-slowlog.cursor"


def text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def entry_line(entry: dict) -> str:
    """One SLOWLOG entry as a log line (Redis redacts secrets such as AUTH's in it)."""
    when = datetime.fromtimestamp(entry["start_time"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    command = text(entry["command"]).replace("\n", "\\n")
    return (f"{when} id={entry['id']} duration_us={entry['duration']} "
            f"client={text(entry.get('client_address', ''))} {command}\n")


class GuestLogMixin(GuestLogSource):
    def log_definitions(self) -> dict[str, LogDef]:
        return {"slow_query": LogDef("slow_query", USER, self.config.directory / SLOWLOG_FILE),
                "error": LogDef("error", SYS, self.layout.log)}

    async def log_enabled(self, name: str) -> bool:
        reply = await self._admin().execute_command("CONFIG", "GET", THRESHOLD)
        return int(text(next(iter(reply.values())))) >= 0

    async def switch_log(self, name: str, on: bool) -> bool:
        value = str(LONG_QUERY_MS * 1000) if on else OFF
        scratch = self.layout.logging_file.with_name(f".{self.layout.logging_file.name}.tmp")
        scratch.write_text("# the guest logs switched on, written by the Coffer agent; changes are overwritten\n"
                           f"{THRESHOLD} {value}\n")
        scratch.chmod(0o644)
        os.replace(scratch, self.layout.logging_file)
        await self._admin().execute_command("CONFIG", "SET", THRESHOLD, value)
        return False

    async def refresh_log(self, name: str) -> None:
        if name != "slow_query":
            return
        client = self._admin()
        run_id = text((await client.info("server"))["run_id"])
        cursor_file = self.config.directory / CURSOR_FILE
        try:
            cursor = json.loads(cursor_file.read_text())
        except FileNotFoundError:
            cursor = {}
        # entry ids start again at 0 when the server restarts
        last = cursor.get("last_id", -1) if cursor.get("run_id") == run_id else -1
        entries = sorted((e for e in await client.slowlog_get(-1) if e["id"] > last), key=lambda e: e["id"])
        with open(self.config.directory / SLOWLOG_FILE, "a") as log:
            log.writelines(entry_line(e) for e in entries)
        last = entries[-1]["id"] if entries else last
        scratch = cursor_file.with_name(f".{CURSOR_FILE}.tmp")
        scratch.write_text(json.dumps({"run_id": run_id, "last_id": last}))
        await asyncio.to_thread(os.replace, scratch, cursor_file)
