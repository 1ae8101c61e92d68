"""PostgreSQL: a full physical backup is pg_basebackup's tar stream on stdout, with
the WAL the backup needs fetched into it (-X fetch: streaming WAL cannot go to stdout),
taken over the replication protocol on the instance's local socket."""
from __future__ import annotations

from typing import AsyncIterator

from ..datastores.postgresql.engine_user import ENGINE, bindir
from .process import output_of


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
