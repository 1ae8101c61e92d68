"""Backup byte work on the instance: each datastore's module produces the plain
backup stream (full, or incremental on top of a parent's recorded positions);
agent/verbs/backup.py seals it and puts it in the object store.

A module has `async def stream(manager, parent_meta, meta) -> AsyncIterator[bytes]`:
it yields the stream and, before it ends, fills `meta` with what a later
incremental backup or a restore needs (positions, format)."""
from __future__ import annotations

import importlib

MODULES = {"postgresql": "postgresql", "mariadb": "mariadb", "mysql": "mariadb", "redis": "redis"}


def module_for(datastore: str):
    try:
        return importlib.import_module(f"{__name__}.{MODULES[datastore]}")
    except KeyError:
        raise ValueError(f"datastore {datastore!r} has no backups") from None
