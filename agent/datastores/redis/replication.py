"""Redis replication: the source keeps an ACL user per replica allowed only the
replication commands; a replica is told REPLICAOF with that user (masteruser /
masterauth) and gets a full sync at once (repl-diskless-sync-delay 0, layout.py).
ACL users are per server: a replica serves the data, its own users stay its own."""
from __future__ import annotations

import asyncio
import time

from ...manager import ReplicationState, SourceLink
from .layout import password_hash

SYNC_TIMEOUT_SECONDS = 120


class RedisReplication:
    async def serve_replica(self, account: str, password: str) -> None:
        client = self._admin()
        await client.execute_command("ACL", "SETUSER", account, "reset", "on",
                                     f"#{password_hash(password)}", "+psync", "+replconf", "+ping")
        await client.execute_command("ACL", "SAVE")

    async def forget_replica(self, account: str) -> None:
        client = self._admin()
        await client.execute_command("ACL", "DELUSER", account)
        await client.execute_command("ACL", "SAVE")

    async def follow(self, source: SourceLink, copy_data: bool) -> None:
        if not await self.is_running():  # a primary stepping down after its planned stop
            await self.bootstrap()
        client = self._admin()
        await client.execute_command("CONFIG", "SET", "masteruser", source.user)
        await client.execute_command("CONFIG", "SET", "masterauth", source.password)
        await client.execute_command("REPLICAOF", source.address, str(source.port))
        if copy_data:  # the replica is made once its first full sync is done
            deadline = time.monotonic() + SYNC_TIMEOUT_SECONDS
            while (await client.info("replication")).get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no sync from {source.address} within {SYNC_TIMEOUT_SECONDS} s")
                await asyncio.sleep(0.02)

    async def refuse_writes(self) -> None:
        await self._admin().execute_command("CLIENT", "PAUSE", "60000", "WRITE")

    async def promote(self) -> None:
        await self._admin().execute_command("REPLICAOF", "NO", "ONE")

    async def replication_state(self) -> ReplicationState:
        info = await self._admin().info("replication")
        if info.get("role") == "master":
            return ReplicationState("primary", int(info.get("master_repl_offset", 0)))
        return ReplicationState("replica", int(info.get("slave_repl_offset", 0)),
                                float(info.get("master_last_io_seconds_ago", 0) or 0))
