"""PostgreSQL: a full physical backup is pg_basebackup's tar stream on stdout, with
the WAL the backup needs fetched into it (-X fetch: streaming WAL cannot go to stdout),
taken over the replication protocol on the instance's local socket."""
from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

from ..datastores.postgresql.engine_user import ENGINE, bindir
from .process import feed, output_of


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


async def restore(manager, chain: list[tuple[dict, AsyncIterator[bytes]]], scratch: Path) -> None:
    """A data directory in `scratch` from the full backup's tar; PostgreSQL finishes it
    on its first start (backup_label, with the WAL the backup fetched)."""
    if len(chain) != 1:
        raise ValueError("a PostgreSQL restore takes one full backup")
    ENGINE.chown(scratch)
    [(_meta, plain)] = chain
    await feed(ENGINE.argv(["tar", "-x", "-f", "-", "-C", str(scratch)]), plain)
