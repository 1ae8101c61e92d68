"""A backup's manifest: what a restore needs besides the object (datastore, engine meta,
checksum, size and the data key wrapped by the master key), written beside it as
<object>.manifest when the backup completes. With it a backup whose record is gone
(another deployment's, or one whose record was lost) can be imported again
(POST /backups with restore_from); without the master key it is of no use."""
from __future__ import annotations

import json

from plumbing.objectstore import ObjectStore

FORMAT = "coffer-backup-manifest-1"
SUFFIX = ".manifest"
FIELDS = ("id", "project_id", "instance_id", "parent_id", "datastore", "datastore_version", "wrapped_key",
          "size_bytes", "checksum", "engine_meta")


async def _one(data: bytes):
    yield data


async def write(objects: ObjectStore, row) -> None:
    manifest = {"format": FORMAT, **{f: getattr(row, f) for f in FIELDS}}
    await objects.put(row.container, row.object + SUFFIX, _one(json.dumps(manifest).encode()),
                      {"format": FORMAT})


async def read(objects: ObjectStore, container: str, name: str) -> dict:
    """The manifest of the object `name`; ObjectNotFound when there is none, ValueError
    when it is no manifest of this format."""
    manifest = json.loads(b"".join([c async for c in objects.get(container, name + SUFFIX)]))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or set(FIELDS) - set(manifest):
        raise ValueError("not a Coffer backup manifest")
    return manifest
