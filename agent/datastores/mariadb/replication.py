"""MariaDB GTID replication. The source keeps an account per replica; a replica
starts from a consistent dump of its source (the GTID position it was taken at
read from the dump), then streams from that position. Blocking PyMySQL and client
tools, run in a thread. Passwords reach the tools through the environment and the
server as hashes or in CHANGE MASTER (kept by the server in its own master.info)."""
from __future__ import annotations

import asyncio
import os
import re
import subprocess

import pymysql

from ...engine_user import EngineCommandError
from ...manager import ReplicationState, SourceLink
from . import users

DUMP = "/usr/bin/mariadb-dump"
CLIENT = "/usr/bin/mariadb"
# what a replica's account needs on its source: the binary log, and a consistent dump
GRANTS = "REPLICATION SLAVE, SELECT, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER, BINLOG MONITOR"


def gtid_sequence(position: str) -> int:
    """How far a GTID position goes: the sum of its domains' sequence numbers."""
    return sum(int(part.rsplit("-", 1)[1]) for part in position.split(",") if part.count("-") == 2)


class MariadbReplication:
    def _sql(self, *statements: tuple) -> list:
        conn = users.connect(str(self.paths.socket), self.admin)
        try:
            with conn.cursor(pymysql.cursors.DictCursor) as cur:
                rows = []
                for statement in statements:
                    cur.execute(*statement)
                    rows = cur.fetchall()
                return rows
        finally:
            conn.close()

    async def serve_replica(self, account: str, password: str) -> None:
        secret = users.native_hash(password)
        escaped = f"'{account}'@'%%'"  # statements with parameters are %-formatted
        await asyncio.to_thread(self._sql, (f"CREATE USER IF NOT EXISTS {escaped} IDENTIFIED BY PASSWORD %s", (secret,)),
                                (f"ALTER USER {escaped} IDENTIFIED BY PASSWORD %s", (secret,)),
                                (f"GRANT {GRANTS} ON *.* TO '{account}'@'%'",))

    async def forget_replica(self, account: str) -> None:
        await asyncio.to_thread(self._sql, (f"DROP USER IF EXISTS '{account}'@'%'",))

    def _change_master(self, source: SourceLink, use_gtid: str) -> list[tuple]:
        # semi-synchronous on the replica's side always: its primary decides whether to wait for it
        return [("STOP SLAVE",), ("SET GLOBAL rpl_semi_sync_slave_enabled = ON",),
                ("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
                 f"MASTER_USE_GTID={use_gtid}, MASTER_CONNECT_RETRY=1",
                 (source.address, source.port, source.user, source.password)),
                ("START SLAVE",)]

    def _copy_from(self, source: SourceLink) -> None:
        env = {**os.environ, "MYSQL_PWD": source.password}
        dump = subprocess.run([DUMP, f"--host={source.address}", f"--port={source.port}", f"--user={source.user}",
                               "--skip-ssl", "--all-databases", "--single-transaction", "--gtid", "--master-data=2",
                               "--routines", "--events", "--triggers", "--ignore-table=mysql.gtid_slave_pos"],
                              env=env, capture_output=True, timeout=600)
        if dump.returncode != 0:
            raise EngineCommandError(f"mariadb-dump of the source failed: {dump.stderr.decode(errors='replace')[-500:]}")
        found = re.search(rb"gtid_slave_pos\s*=\s*'([^']*)'", dump.stdout)
        if found is None:
            raise EngineCommandError("the source's dump names no GTID position")
        self._sql(("SET GLOBAL read_only = 1",), ("STOP SLAVE",), ("RESET SLAVE ALL",), ("RESET MASTER",))
        load = subprocess.run([CLIENT, f"--socket={self.paths.socket}", f"--user={self.admin}", "--skip-ssl",
                               "--init-command=SET sql_log_bin = 0"], input=dump.stdout, capture_output=True,
                              timeout=600)
        if load.returncode != 0:
            raise EngineCommandError(f"loading the source's dump failed: {load.stdout.decode(errors='replace')[-500:]}"
                                     f"{load.stderr.decode(errors='replace')[-500:]}")
        self._sql(("FLUSH PRIVILEGES",), ("SET GLOBAL gtid_slave_pos = %s", (found.group(1).decode(),)),
                  *self._change_master(source, "slave_pos"))

    async def follow(self, source: SourceLink, copy_data: bool) -> None:
        if copy_data:
            await asyncio.to_thread(self._copy_from, source)
            return
        # a replica re-pointed, or a primary stepping down: its own transactions count too
        if not await self.is_running():
            await self.bootstrap()
        await asyncio.to_thread(self._sql, ("SET GLOBAL read_only = 1",), *self._change_master(source, "current_pos"))

    async def set_synchronous(self, enabled: bool) -> None:
        """Semi-synchronous replication, waiting after the binary log sync (lossless); a
        primary whose replicas all stay silent for rpl_semi_sync_master_timeout (10 s)
        goes on asynchronously."""
        await asyncio.to_thread(self._sql, (f"SET GLOBAL rpl_semi_sync_master_enabled = {'ON' if enabled else 'OFF'}",))

    async def refuse_writes(self) -> None:
        await asyncio.to_thread(self._sql, ("SET GLOBAL read_only = 1",))

    async def promote(self) -> None:
        # a new primary waits for no replica until it has followers again (the provisioner says)
        await asyncio.to_thread(self._sql, ("STOP SLAVE",), ("RESET SLAVE ALL",),
                                ("SET GLOBAL rpl_semi_sync_master_enabled = OFF",), ("SET GLOBAL read_only = 0",))

    async def replication_state(self) -> ReplicationState:
        def read():
            rows = self._sql(("SHOW SLAVE STATUS",))
            position = self._sql(("SELECT @@gtid_current_pos AS pos",))[0]["pos"]
            if not rows:
                return ReplicationState("primary", gtid_sequence(position))
            return ReplicationState("replica", gtid_sequence(position), float(rows[0]["Seconds_Behind_Master"] or 0))
        return await asyncio.to_thread(read)
