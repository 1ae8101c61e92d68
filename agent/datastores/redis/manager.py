from __future__ import annotations

import asyncio
import re
import subprocess
import time

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ...manager import DatastoreManager, Metrics, UserSpec
from ...processes import dir_size, usage
from . import run, status, users
from .accounts import RedisAccounts
from .bootstrap import bootstrap
from .configuration import ConfigurationMixin
from .engine_user import REDIS_SERVER
from .replication import RedisReplication
from .layout import ADMIN_USER, Layout, admin_password
from .logs import GuestLogMixin

DISK_SAMPLE_SECONDS = 10


class Manager(RedisAccounts, ConfigurationMixin, GuestLogMixin, RedisReplication, DatastoreManager):
    def __init__(self, config):
        super().__init__(config)
        self.layout = Layout(config.directory)
        self._client: Redis | None = None
        self._disk = (0.0, 0)

    def _admin(self) -> Redis:
        """The agent's admin connection, made when first needed: the password file
        is made by bootstrap, which may still be running when the manager is made."""
        if self._client is None:
            where = ({"unix_socket_path": str(self.layout.socket)} if self.layout.socket is not None
                     else {"host": self.config.address, "port": self.config.port})
            # no retries: a heartbeat reports a down engine at once instead of backing off
            self._client = Redis(**where, username=ADMIN_USER, password=admin_password(self.layout),
                                 socket_connect_timeout=5, socket_timeout=10, retry=Retry(NoBackoff(), 0),
                                 max_connections=4)
        return self._client

    async def _close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def engine_version(self) -> str:
        done = await asyncio.to_thread(subprocess.run, [REDIS_SERVER, "--version"], capture_output=True,
                                       text=True, timeout=10)
        m = re.search(r"\bv=(\d+(?:\.\d+)*)", done.stdout)
        return m.group(1) if m else self.config.version

    async def bootstrap(self) -> None:
        await asyncio.to_thread(bootstrap, self.config)

    async def is_running(self) -> bool:
        return await asyncio.to_thread(run.server_pid, self.layout) is not None

    async def stop(self) -> None:
        await self._close()
        await asyncio.to_thread(run.stop, self.layout)

    async def prepare(self, databases: list[dict], user_specs: list[UserSpec]) -> None:
        users.check(databases, user_specs)
        await users.create_users(self._admin(), user_specs)

    async def metrics(self) -> Metrics:
        try:
            connections, commands, pid, hit_ratio, size = await status.counters(self._admin())
        except (RedisError, OSError):
            await self._close()
            return Metrics(engine_up=False, disk_used_bytes=self._disk[1])
        cpu, rss = usage([pid])
        if time.monotonic() - self._disk[0] > DISK_SAMPLE_SECONDS:
            self._disk = (time.monotonic(), await asyncio.to_thread(dir_size, self.layout.data))
        return Metrics(True, connections, commands, cpu, rss, self._disk[1], hit_ratio, size)
