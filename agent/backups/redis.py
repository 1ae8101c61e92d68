"""Redis: an RDB snapshot. BGSAVE forks a child that writes dump.rdb; once the save
this call started has finished, the file is streamed."""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import AsyncIterator

from ..datastores.redis.engine_user import chown_to_engine_user
from .process import file_chunks

POLL_SECONDS = 0.05
# Redis 7's multi-part append-only file (appenddirname / appendfilename defaults)
AOF_DIR, AOF_BASE, AOF_MANIFEST = "appendonlydir", "appendonly.aof.1.base.rdb", "appendonly.aof.manifest"
SAVE_TIMEOUT_SECONDS = 600


async def _snapshot(manager) -> None:
    client = manager._admin()
    while (await client.info("persistence"))["rdb_bgsave_in_progress"]:
        await asyncio.sleep(POLL_SECONDS)  # one already running would not include writes up to now
    before = (await client.info("persistence"))["rdb_saves"]
    await client.bgsave()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SAVE_TIMEOUT_SECONDS
    while True:
        info = await client.info("persistence")
        if not info["rdb_bgsave_in_progress"] and info["rdb_saves"] > before:
            if info["rdb_last_bgsave_status"] != "ok":
                raise RuntimeError("Redis could not write its snapshot (BGSAVE failed); see its log")
            return
        if loop.time() > deadline:
            raise RuntimeError(f"Redis did not finish its snapshot within {SAVE_TIMEOUT_SECONDS} s")
        await asyncio.sleep(POLL_SECONDS)


async def stream(manager, parent_meta: dict | None, meta: dict) -> AsyncIterator[bytes]:
    if parent_meta is not None:
        raise ValueError("Redis has no incremental backups; take a full one")
    await _snapshot(manager)
    meta.update(format="rdb")
    async for chunk in file_chunks(manager.layout.data / "dump.rdb"):
        yield chunk


async def restore(manager, chain: list[tuple[dict, AsyncIterator[bytes]]], scratch: Path,
                  options: dict) -> None:
    """The snapshot as the base of a fresh append-only file (the instance runs with
    appendonly yes, and Redis 7 then ignores a bare dump.rdb), with the instance's own
    users (users.acl)."""
    if len(chain) != 1:
        raise ValueError("a Redis restore takes one snapshot")
    [(_meta, plain)] = chain
    aof = scratch / AOF_DIR
    aof.mkdir(mode=0o700)
    with open(aof / AOF_BASE, "wb") as out:
        async for chunk in plain:
            await asyncio.to_thread(out.write, chunk)
    (aof / AOF_MANIFEST).write_text(f"file {AOF_BASE} seq 1 type b\n")
    acl = manager.layout.aclfile
    if acl.exists():
        shutil.copy2(acl, scratch / acl.name)
    for path in (scratch, *scratch.iterdir(), *aof.iterdir()):
        chown_to_engine_user(path)
