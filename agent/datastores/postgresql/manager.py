from __future__ import annotations

import asyncio
import re
import time

import psycopg

from ...manager import DatastoreManager, Metrics, UserSpec
from ...processes import dir_size, usage
from . import run, status, users
from .accounts import PostgresAccounts
from .bootstrap import bootstrap
from .configuration import ConfigurationMixin
from .replication import PostgresReplication
from .engine_user import bindir
from .engine_user import run as run_engine
from .logs import GuestLogMixin

DISK_SAMPLE_SECONDS = 10


class Manager(PostgresAccounts, ConfigurationMixin, GuestLogMixin, PostgresReplication, DatastoreManager):
    def __init__(self, config):
        super().__init__(config)
        self.data = config.directory / "data"
        self.socket_dir = config.directory / "run"
        self._conn: psycopg.AsyncConnection | None = None
        self._disk = (0.0, 0)

    async def engine_version(self) -> str:
        out = await asyncio.to_thread(run_engine, [str(bindir(self.config.version) / "postgres"), "--version"])
        m = re.search(r"\(PostgreSQL\) (\S+)", out)
        return m.group(1) if m else self.config.version

    async def bootstrap(self) -> None:
        await asyncio.to_thread(bootstrap, self.config)

    async def is_running(self) -> bool:
        return await asyncio.to_thread(run.is_running, self.data)

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        await asyncio.to_thread(run.stop, self.config.version, self.data)

    async def prepare(self, databases: list[dict], user_specs: list[UserSpec]) -> None:
        async with await users.connect(str(self.socket_dir), self.config.port) as conn:
            await users.create_databases(conn, databases)
            await users.create_users(conn, str(self.socket_dir), self.config.port, user_specs)

    async def metrics(self) -> Metrics:
        pid = run.postmaster_pid(self.data)
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await users.connect(str(self.socket_dir), self.config.port)
            connections, xact, server_pids = await status.counters(self._conn)
            hit_ratio, size = await status.gauges(self._conn)
        except psycopg.Error:
            self._conn = None
            return Metrics(engine_up=False, disk_used_bytes=self._disk[1])
        cpu, rss = usage(([pid] if pid else []) + server_pids)
        if time.monotonic() - self._disk[0] > DISK_SAMPLE_SECONDS:
            self._disk = (time.monotonic(), dir_size(self.data))
        return Metrics(True, connections, xact, cpu, rss, self._disk[1], hit_ratio, size)
