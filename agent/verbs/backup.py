"""Backup: the datastore's plain stream (agent/backups/), sealed under the backup's
data key (it arrives sealed to this agent; it is never written down or reported),
put in the object store. The result carries the stored size, the plain stream's
SHA-256 and what a later incremental backup or a restore needs."""
from __future__ import annotations

import base64

from plumbing import objectstore
from plumbing.sealedstream import Sealing

from .. import backups
from . import verb

FORMAT = "coffer-zstd-aes256gcm-1"


@verb("backup")
async def backup(manager, arguments: dict, secrets: dict) -> dict:
    if not secrets.get("data_key"):
        raise ValueError("no sealed data key")
    source = backups.module_for(manager.config.datastore)
    sealing, meta = Sealing(base64.b64decode(secrets["data_key"])), {}
    stored = await objectstore.from_environment().put(
        arguments["container"], arguments["object"],
        sealing.seal(source.stream(manager, arguments.get("parent"), meta)),
        {"backup-id": arguments["backup_id"], "format": FORMAT})
    return {"size_bytes": stored.size, "plain_bytes": sealing.plain_bytes, "sha256": sealing.sha256, "meta": meta}
