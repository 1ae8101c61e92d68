"""PostgreSQL streaming replication. The source keeps a REPLICATION role and a
physical slot per replica (the slot holds the WAL a disconnected replica still
needs); a replica is a pg_basebackup of its source started as a standby, its
source named in replication.conf (included by coffer.conf). The replica's password
lives only in a passfile the postgres user alone reads, never in a setting."""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import psycopg
from psycopg import sql

from ...manager import ReplicationState, SourceLink
from . import users
from .engine_user import bindir, chown_to_engine_user
from .engine_user import run as run_engine
from .initdb import write_replication_conf
from .scram import verifier

HBA_LINE = "host    replication   all   0.0.0.0/0   scram-sha-256\n"
STATE = """SELECT pg_is_in_recovery(),
  CASE WHEN pg_is_in_recovery()
       THEN greatest(coalesce(pg_last_wal_receive_lsn(), '0/0'), coalesce(pg_last_wal_replay_lsn(), '0/0')) - '0/0'
       ELSE pg_current_wal_lsn() - '0/0' END,
  CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
       ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END"""


class PostgresReplication:
    async def _admin(self) -> psycopg.AsyncConnection:
        return await users.connect(str(self.socket_dir), self.config.port)

    async def serve_replica(self, account: str, password: str) -> None:
        async with await self._admin() as conn:
            await self._allow_replication(conn)
            exists = await (await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (account,))).fetchone()
            await conn.execute(sql.SQL(("ALTER" if exists else "CREATE") + " ROLE {} WITH REPLICATION LOGIN PASSWORD {}")
                               .format(sql.Identifier(account), sql.Literal(verifier(password))))
            slot = await (await conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                                              (account,))).fetchone()
            if not slot:
                await conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (account,))

    async def forget_replica(self, account: str) -> None:
        async with await self._admin() as conn:
            # the slot would keep WAL for a replica that never comes back
            await conn.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                               "WHERE slot_name = %s AND active_pid IS NOT NULL", (account,))
            for _ in range(50):
                row = await (await conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                                                (account,))).fetchone()
                if row is None:
                    break
                if not row[0]:
                    await conn.execute("SELECT pg_drop_replication_slot(%s)", (account,))
                    break
                await asyncio.sleep(0.1)
            await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(account)))

    async def _allow_replication(self, conn) -> None:
        """Instances made before replication existed lack the pg_hba line."""
        hba = self.data / "pg_hba.conf"
        if HBA_LINE.split() not in [line.split() for line in hba.read_text().splitlines()]:
            with open(hba, "a") as f:
                f.write(HBA_LINE)
            await conn.execute("SELECT pg_reload_conf()")

    def _write_passfile(self, source: SourceLink) -> Path:
        passfile = self.config.directory / "replication.pass"
        passfile.write_text(f"{source.address}:{source.port}:*:{source.user}:{source.password}\n")
        passfile.chmod(0o600)
        chown_to_engine_user(passfile)
        return passfile

    def _write_source(self, source: SourceLink) -> None:
        passfile = self._write_passfile(source)
        write_replication_conf(self.data, "# written by the Coffer agent: this instance is a replica\n"
                               f"primary_conninfo = 'host={source.address} port={source.port} user={source.user} "
                               f"passfile={passfile} application_name={self.config.instance_id.replace('-', '_')}'\n"
                               f"primary_slot_name = '{source.slot}'\n")

    async def follow(self, source: SourceLink, copy_data: bool) -> None:
        if copy_data:
            await self.stop()
            await asyncio.to_thread(self._copy_from, source)
            await self.bootstrap()
            return
        self._write_source(source)
        if await self.is_running() and await self._in_recovery():
            async with await self._admin() as conn:
                await conn.execute("SELECT pg_reload_conf()")  # PostgreSQL 13+ re-reads primary_conninfo
            return
        await self.stop()  # a primary steps down: it restarts as a standby
        (self.data / "standby.signal").touch()
        chown_to_engine_user(self.data / "standby.signal")
        await self.bootstrap()

    def _copy_from(self, source: SourceLink) -> None:
        # the data directory may be a link into the instance's volume: empty what it
        # points at, so the copy lands on the volume
        real = self.data.resolve()
        shutil.rmtree(real, ignore_errors=True)
        real.mkdir(mode=0o700)
        chown_to_engine_user(real)
        passfile = self._write_passfile(source)
        conninfo = f"host={source.address} port={source.port} user={source.user} passfile={passfile}"
        run_engine([str(bindir(self.config.version) / "pg_basebackup"), "-d", conninfo, "-D", str(self.data),
                    "-X", "stream", "-S", source.slot, "-c", "fast", "-w"], timeout=600)
        self._write_source(source)
        (self.data / "standby.signal").touch()
        chown_to_engine_user(self.data / "standby.signal")

    async def _in_recovery(self) -> bool:
        async with await self._admin() as conn:
            return bool((await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone())[0])

    async def set_synchronous(self, enabled: bool) -> None:
        async with await self._admin() as conn:
            await conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{'ANY 1 (*)' if enabled else ''}'")
            await conn.execute("SELECT pg_reload_conf()")

    async def promote(self) -> None:
        async with await self._admin() as conn:
            # a new primary waits for no replica until it has followers again (the provisioner says)
            await conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
            if (await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone())[0]:
                await conn.execute("SELECT pg_promote(true, 60)")
            await conn.execute("SELECT pg_reload_conf()")
        write_replication_conf(self.data)  # a primary's: no source

    async def replication_state(self) -> ReplicationState:
        if self._conn is None or self._conn.closed:
            self._conn = await self._admin()
        in_recovery, position, lag = await (await self._conn.execute(STATE)).fetchone()
        return ReplicationState("replica" if in_recovery else "primary", int(position), float(lag))
