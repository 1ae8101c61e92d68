"""PostgreSQL: a full physical backup is pg_basebackup's tar stream on stdout, with
the WAL the backup needs fetched into it (-X fetch: streaming WAL cannot go to stdout),
taken over the replication protocol on the instance's local socket."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import AsyncIterator

from ..datastores.postgresql import users
from ..datastores.postgresql.engine_user import ENGINE, bindir
from . import wal
from .process import feed, output_of

RECOVERY_SETTINGS = ("restore_command", "recovery_target_time", "recovery_target_action")


async def stream(manager, parent_meta: dict | None, meta: dict) -> AsyncIterator[bytes]:
    if parent_meta is not None:
        raise ValueError("incremental PostgreSQL backups need continuous WAL archiving, which this release "
                         "does not have yet; take a full backup")
    c = manager.config
    argv = ENGINE.argv([str(bindir(c.version) / "pg_basebackup"), "-h", str(manager.socket_dir), "-p", str(c.port),
                        "-U", "postgres", "-w", "-D", "-", "-F", "tar", "-X", "fetch", "--checkpoint=fast",
                        "--no-manifest"])
    meta.update(format="pg_basebackup-tar", version=c.version)
    async for chunk in output_of(argv):
        yield chunk


async def restore(manager, chain: list[tuple[dict, AsyncIterator[bytes]]], scratch: Path,
                  options: dict) -> None:
    """A data directory in `scratch` from the full backup's tar; PostgreSQL finishes it
    on its first start (backup_label, with the WAL the backup fetched). With a
    restore_time, the source's archived WAL is fetched and the server recovers up to
    that moment, then promotes. The source's archiving settings are dropped: the new
    instance archives once a backup of its own enables it."""
    if len(chain) != 1:
        raise ValueError("a PostgreSQL restore takes one full backup")
    ENGINE.chown(scratch)
    [(_meta, plain)] = chain
    await feed(ENGINE.argv(["tar", "-x", "-f", "-", "-C", str(scratch)]), plain)
    auto = scratch / "postgresql.auto.conf"
    kept = [line for line in (auto.read_text().splitlines() if auto.exists() else [])
            if line.split("=")[0].strip() not in ("archive_mode", "archive_command", "archive_timeout")]
    if options.get("restore_time"):
        wal_dir = _restore_wal_dir(manager)
        shutil.rmtree(wal_dir, ignore_errors=True)
        wal_dir.mkdir(mode=0o700)
        ENGINE.chown(wal_dir)
        await wal.fetch(options["archive"], options["archive_key"], wal_dir)
        kept += [f"restore_command = 'cp {wal_dir}/%f %p'", f"recovery_target_time = '{options['restore_time']}'",
                 "recovery_target_action = 'promote'"]
        (scratch / "recovery.signal").touch()
        ENGINE.chown(scratch / "recovery.signal")
    auto.write_text("\n".join(kept) + "\n")
    ENGINE.chown(auto)


def _restore_wal_dir(manager) -> Path:
    return manager.config.directory / "restore-wal"


async def finish_restore(manager, options: dict) -> None:
    """Once the server has recovered (and promoted): the recovery settings go."""
    if not options.get("restore_time"):
        return
    async with await users.connect(str(manager.socket_dir), manager.config.port) as conn:
        for setting in RECOVERY_SETTINGS:
            await conn.execute(f"ALTER SYSTEM RESET {setting}")
        await conn.execute("SELECT pg_reload_conf()")
    shutil.rmtree(_restore_wal_dir(manager), ignore_errors=True)
