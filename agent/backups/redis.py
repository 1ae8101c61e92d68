"""Redis: an RDB snapshot. BGSAVE forks a child that writes dump.rdb; once the save
this call started has finished, the file is streamed."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

from .process import file_chunks

POLL_SECONDS = 0.05
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
