"""PostgreSQL: a full physical backup is pg_basebackup's tar stream on stdout, with
the WAL the backup needs fetched into it (-X fetch: streaming WAL cannot go to stdout),
taken over the replication protocol on the instance's local socket."""
from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import AsyncIterator

from ..datastores.postgresql import users
from ..datastores.postgresql.engine_user import ENGINE, bindir
from . import wal
from .process import feed, output_of

RECOVERY_TIMEOUT_SECONDS = 1200
# tar reads its input in records of this many 512-byte blocks: 1 MiB, a pipe's worth,
# instead of 10 KiB, which costs tar (a restore's slowest stage) a third more CPU
TAR_RECORD_BLOCKS = 2048
RECOVERY_SETTINGS = ("restore_command", "recovery_target_time", "recovery_target_lsn", "recovery_target_action")


async def stream(manager, parent_meta: dict | None, meta: dict) -> AsyncIterator[bytes]:
    if parent_meta is not None:
        async for chunk in _wal_since_parent(manager, parent_meta, meta):
            yield chunk
        return
    c = manager.config
    # the backup starts at or after the current segment: the archive before it is not its
    async with await users.connect(str(manager.socket_dir), c.port) as conn:
        first = (await (await conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())")).fetchone())[0]
    argv = ENGINE.argv([str(bindir(c.version) / "pg_basebackup"), "-h", str(manager.socket_dir), "-p", str(c.port),
                        "-U", "postgres", "-w", "-D", "-", "-F", "tar", "-X", "fetch", "--checkpoint=fast",
                        "--no-manifest"])
    meta.update(format="pg_basebackup-tar", version=c.version, archive_from=first)
    async for chunk in output_of(argv):
        yield chunk


async def _wal_since_parent(manager, parent_meta: dict, meta: dict) -> AsyncIterator[bytes]:
    """An incremental backup is the WAL written since its parent: it is in the archive
    once the current segment is closed and shipped. The object itself is a small
    manifest; a restore replays the archive up to its end_lsn."""
    end_lsn, segment = await wal.close_segment(manager)
    meta.update(format="wal", end_lsn=end_lsn, end_segment=segment)
    yield json.dumps({"end_lsn": end_lsn, "end_segment": segment}).encode()


async def restore(manager, chain: list[tuple[dict, AsyncIterator[bytes]]], scratch: Path,
                  options: dict) -> None:
    """A data directory in `scratch` from the full backup's tar; PostgreSQL finishes it
    on its first start (backup_label, with the WAL the backup fetched). With a
    restore_time, or incremental backups on top of the full one, the source's archived
    WAL is fetched and the server recovers up to that moment (or the last incremental
    backup's end), then promotes. The source's archiving settings are dropped: the new
    instance archives once a backup of its own enables it."""
    ENGINE.chown(scratch)
    (_meta, plain), *incrementals = chain
    await feed(ENGINE.argv(["tar", "-x", "-b", str(TAR_RECORD_BLOCKS), "-f", "-", "-C", str(scratch)]), plain)
    for _meta, manifest in incrementals:
        async for _chunk in manifest:  # read whole: authenticated and checksummed
            pass
    target = None
    if options.get("restore_time"):
        target = f"recovery_target_time = '{options['restore_time']}'"
    elif incrementals:
        target = f"recovery_target_lsn = '{incrementals[-1][0]['end_lsn']}'"
    auto = scratch / "postgresql.auto.conf"
    kept = [line for line in (auto.read_text().splitlines() if auto.exists() else [])
            if line.split("=")[0].strip() not in ("archive_mode", "archive_command", "archive_timeout")]
    if target:
        wal_dir = _restore_wal_dir(manager)
        shutil.rmtree(wal_dir, ignore_errors=True)
        wal_dir.mkdir(mode=0o700)
        ENGINE.chown(wal_dir)
        await wal.fetch(options["archive"], options["archive_key"], wal_dir)
        kept += [f"restore_command = 'cp {wal_dir}/%f %p'", target, "recovery_target_action = 'promote'"]
        (scratch / "recovery.signal").touch()
        ENGINE.chown(scratch / "recovery.signal")
    auto.write_text("\n".join(kept) + "\n")
    ENGINE.chown(auto)


def _restore_wal_dir(manager) -> Path:
    return manager.config.directory / "restore-wal"


async def finish_restore(manager, options: dict) -> None:
    """Once the server has recovered and promoted (it accepts read-only connections
    before: nothing may be written until then), the recovery settings go."""
    async with await users.connect(str(manager.socket_dir), manager.config.port) as conn:
        deadline = asyncio.get_running_loop().time() + RECOVERY_TIMEOUT_SECONDS
        while (await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone())[0]:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"PostgreSQL did not finish its recovery within {RECOVERY_TIMEOUT_SECONDS} s")
            await asyncio.sleep(0.1)
        for setting in RECOVERY_SETTINGS:
            await conn.execute(f"ALTER SYSTEM RESET {setting}")
        await conn.execute("SELECT pg_reload_conf()")
    shutil.rmtree(_restore_wal_dir(manager), ignore_errors=True)
