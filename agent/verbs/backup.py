"""Backup and restore. Backup: the datastore's plain stream (agent/backups/), sealed under the backup's
data key (it arrives sealed to this agent; it is never written down or reported),
put in the object store. The result carries the stored size, the plain stream's
SHA-256 and what a later incremental backup or a restore needs."""
from __future__ import annotations

import asyncio
import base64
import shutil

from plumbing import objectstore
from plumbing.sealedstream import Sealing, unseal

from .. import backups
from ..backups import binlog, wal
from . import verb

FORMAT = "coffer-zstd-aes256gcm-1"


@verb("backup")
async def backup(manager, arguments: dict, secrets: dict) -> dict:
    if not secrets.get("data_key"):
        raise ValueError("no sealed data key")
    source = backups.module_for(manager.config.datastore)
    if arguments.get("archive"):  # from its first backup on, the WAL / binlogs are archived
        archiving = wal if manager.config.datastore == "postgresql" else binlog
        await archiving.enable(manager, arguments["archive"], secrets["archive_key"])
    sealing, meta = Sealing(base64.b64decode(secrets["data_key"])), {}
    stored = await objectstore.from_environment().put(
        arguments["container"], arguments["object"],
        sealing.seal(source.stream(manager, arguments.get("parent"), meta)),
        {"backup-id": arguments["backup_id"], "format": FORMAT})
    return {"size_bytes": stored.size, "plain_bytes": sealing.plain_bytes, "sha256": sealing.sha256, "meta": meta}


@verb("restore")
async def restore(manager, arguments: dict, secrets: dict) -> dict:
    """Replace the instance's data with a backup chain (full first). Every link is
    read, authenticated and checksummed into a scratch directory while the engine is
    stopped; only a chain that verified whole replaces the data and is started. On
    any failure the engine stays stopped and the old data stays where it was."""
    chain, keys = arguments["chain"], secrets.get("data_keys") or []
    options = {"restore_time": arguments.get("restore_time"), "archive": arguments.get("archive"),
               "archive_key": base64.b64decode(secrets["archive_key"]) if secrets.get("archive_key") else None}
    if options["restore_time"] and not (options["archive"] and options["archive_key"]):
        raise ValueError("a restore to a point in time needs the source's WAL archive")
    if manager.config.datastore == "postgresql" and len(chain) > 1 and not options["archive"]:
        raise ValueError("an incremental PostgreSQL backup is restored from the source's WAL archive")
    if len(keys) != len(chain):
        raise ValueError(f"{len(chain)} backups to restore but {len(keys)} sealed data keys")
    source = backups.module_for(manager.config.datastore)
    store = objectstore.from_environment()
    # the data directory may be a link into the instance's volume: restore next to
    # what it points at, so the swap is a rename on the volume and the link stays
    data = (manager.config.directory / "data").resolve()
    scratch = data.with_name("data.restoring")
    await asyncio.to_thread(shutil.rmtree, scratch, True)
    scratch.mkdir(mode=0o700)
    await manager.stop()
    try:
        streams = [(link["meta"], unseal(store.get(link["container"], link["object"]),
                                         base64.b64decode(key), link["sha256"]))
                   for link, key in zip(chain, keys)]
        await source.restore(manager, streams, scratch, options)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, scratch, True)
        raise
    old = data.with_name("data.replaced")
    await asyncio.to_thread(shutil.rmtree, old, True)
    data.rename(old)
    scratch.rename(data)
    await asyncio.to_thread(shutil.rmtree, old, True)
    await manager.bootstrap()
    if hasattr(source, "finish_restore"):
        await source.finish_restore(manager, options)
    return {"restored": len(chain)}
