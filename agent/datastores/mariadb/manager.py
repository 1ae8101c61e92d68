from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pymysql

from ...manager import DatastoreManager, Metrics, UserSpec
from ...processes import dir_size, usage
from . import run, status, users
from .accounts import MariadbAccounts
from .bootstrap import bootstrap
from .configuration import ConfigurationMixin
from .logs import GuestLogMixin
from .replication import MariadbReplication
from .conf import Paths
from .engine_user import admin_user, server_version

DISK_SAMPLE_SECONDS = 10


class Manager(MariadbAccounts, ConfigurationMixin, GuestLogMixin, MariadbReplication, DatastoreManager):
    """Serves both `mariadb` and `mysql`: the installed MariaDB server runs them."""

    def __init__(self, config):
        super().__init__(config)
        self.paths = Paths(config.directory)
        self.admin = admin_user()
        self._conn: pymysql.connections.Connection | None = None
        self._conn_lock = threading.Lock()  # metrics run in a worker thread; stop closes the connection
        self._disk = (0.0, 0)

    async def engine_version(self) -> str:
        return await asyncio.to_thread(server_version) or self.config.version

    async def bootstrap(self) -> None:
        await asyncio.to_thread(bootstrap, self.config)

    async def is_running(self) -> bool:
        return await asyncio.to_thread(run.server_pid, self.paths) is not None

    async def stop(self) -> None:
        await asyncio.to_thread(self._close)
        await asyncio.to_thread(run.stop, self.paths)

    def _close(self) -> None:
        with self._conn_lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(pymysql.MySQLError):
                self._conn.close()
            self._conn = None

    async def prepare(self, databases: list[dict], user_specs: list[UserSpec]) -> None:
        await asyncio.to_thread(users.prepare, str(self.paths.socket), self.admin, databases, user_specs)

    def _counters(self) -> tuple[tuple[int, int], tuple[float | None, int]] | None:
        with self._conn_lock:
            try:
                if self._conn is None:
                    self._conn = users.connect(str(self.paths.socket), self.admin)
                return status.counters(self._conn), status.gauges(self._conn)
            except pymysql.MySQLError:
                self._close_locked()
                return None

    async def metrics(self) -> Metrics:
        read = await asyncio.to_thread(self._counters)
        if read is None:
            return Metrics(engine_up=False, disk_used_bytes=self._disk[1])
        pid = await asyncio.to_thread(run.server_pid, self.paths)
        cpu, rss = usage([pid] if pid else [])  # one process: its threads are counted in it
        if time.monotonic() - self._disk[0] > DISK_SAMPLE_SECONDS:
            self._disk = (time.monotonic(), await asyncio.to_thread(dir_size, self.paths.data))
        (connections, commits), (hit_ratio, size) = read
        return Metrics(True, connections, commits, cpu, rss, self._disk[1], hit_ratio, size)
