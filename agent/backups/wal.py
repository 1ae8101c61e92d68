"""PostgreSQL continuous WAL archiving, for point-in-time restores.

The server's archive_command only copies each finished segment into a spool
directory of the instance (it runs as postgres, which must not hold keys or reach
the object store); the agent ships the spool: each segment sealed under its own key
(HMAC-SHA256 of the instance's archive key and the segment's name, so no two objects
share a key and nonces) into <prefix><segment> of the archive's container, then
removes it from the spool. archive_timeout bounds how old the newest archived
moment can be.

Archiving starts with the instance's first backup (`enable`), which hands the agent
the archive key (sealed) and where to ship; both are kept in the instance directory
(root only) so shipping goes on after an agent restart."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
from pathlib import Path

from psycopg import sql

from plumbing import objectstore
from plumbing.logs import log
from plumbing.sealedstream import Sealing, unseal

from ..datastores.postgresql import users
from ..datastores.postgresql.engine_user import ENGINE
from .process import file_chunks

logger = logging.getLogger("agent")
SHIP_SECONDS = float(os.environ.get("COFFER_WAL_SHIP_SECONDS", "1"))
ARCHIVE_TIMEOUT_SECONDS = int(os.environ.get("COFFER_WAL_ARCHIVE_TIMEOUT_SECONDS", "60"))
CLOSE_TIMEOUT_SECONDS = 120
SETTINGS_FILE, KEY_FILE, SPOOL = "wal-archive.json", "wal-archive.key", "wal-spool"


def segment_key(archive_key: bytes, name: str) -> bytes:
    return hmac.new(archive_key, name.encode(), hashlib.sha256).digest()


def write_private(path: Path, text: str) -> None:
    scratch = path.with_name(f".{path.name}.tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    scratch.replace(path)


async def enable(manager, archive: dict, archive_key_b64: str) -> None:
    """Archive this instance's WAL to `archive` ({container, prefix}); restart the
    server once if archive_mode was off (it only changes at start)."""
    directory = manager.config.directory
    spool = directory / SPOOL
    spool.mkdir(mode=0o700, exist_ok=True)
    ENGINE.chown(spool)
    write_private(directory / KEY_FILE, archive_key_b64)
    write_private(directory / SETTINGS_FILE, json.dumps(archive))
    command = f"test ! -f {spool}/%f && cp %p {spool}/.%f.partial && mv {spool}/.%f.partial {spool}/%f"
    async with await users.connect(str(manager.socket_dir), manager.config.port) as conn:
        mode = (await (await conn.execute("SHOW archive_mode")).fetchone())[0]
        current = (await (await conn.execute("SHOW archive_command")).fetchone())[0]
        if mode == "on" and current == command:
            return
        await conn.execute(sql.SQL("ALTER SYSTEM SET archive_command = {}").format(sql.Literal(command)))
        await conn.execute(f"ALTER SYSTEM SET archive_timeout = {ARCHIVE_TIMEOUT_SECONDS}")
        await conn.execute("ALTER SYSTEM SET archive_mode = 'on'")
        await conn.execute("SELECT pg_reload_conf()")
    if mode != "on":
        await manager.restart()


_shipping = asyncio.Lock()  # the background round and a backup's may not ship one segment twice


async def ship(manager) -> int:
    """Ship what the spool holds; the number of segments shipped."""
    async with _shipping:
        return await _ship(manager)


async def _ship(manager) -> int:
    directory = manager.config.directory
    try:
        archive = json.loads((directory / SETTINGS_FILE).read_text())
        key = base64.b64decode((directory / KEY_FILE).read_text())
    except FileNotFoundError:
        return 0
    spool = directory / SPOOL
    names = sorted(p.name for p in spool.iterdir() if not p.name.startswith("."))
    store = objectstore.from_environment()
    for name in names:
        sealing = Sealing(segment_key(key, name))
        await store.put(archive["container"], archive["prefix"] + name, sealing.seal(file_chunks(spool / name)),
                        {"format": "coffer-wal-1"})
        (spool / name).unlink()
    return len(names)


async def keep_shipping(manager) -> None:
    """The agent's background duty for instances whose WAL (PostgreSQL) or binlogs
    (MariaDB) are archived, from their first backup on."""
    from . import binlog
    shipper = ship if manager.config.datastore == "postgresql" else binlog.ship
    while True:
        try:
            await shipper(manager)
        except Exception as exc:  # the spool keeps the segments; the next round retries
            log(logger, logging.WARNING, "WAL not shipped yet", error=repr(exc))
        await asyncio.sleep(SHIP_SECONDS)


async def close_segment(manager) -> tuple[str, str]:
    """Close the current WAL segment and wait until the server has archived it and
    the agent has shipped it: the archive then holds everything written so far.
    (LSN written so far, its segment)."""
    async with await users.connect(str(manager.socket_dir), manager.config.port) as conn:
        # a record first, so the segment to close is never empty (pg_switch_wal does nothing
        # then); its end is the LSN a restore recovers to. The segment waited for is the one
        # the switch completed: the write position read instead may still lag behind the
        # record (or sit on a boundary, named after the segment before), and a restore then
        # missed the segment holding its target
        [lsn] = await (await conn.execute(
            "SELECT pg_logical_emit_message(false, 'coffer', 'WAL segment closed for a backup')")).fetchone()
        [segment] = await (await conn.execute("SELECT pg_walfile_name(pg_switch_wal())")).fetchone()
        deadline = asyncio.get_running_loop().time() + CLOSE_TIMEOUT_SECONDS
        while True:
            archived, failed = await (await conn.execute(
                "SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver")).fetchone()
            if archived and archived[:24] >= segment:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"WAL segment {segment} was not archived within {CLOSE_TIMEOUT_SECONDS} s "
                                   f"(last failure: {failed or 'none'})")
            await asyncio.sleep(0.05)
    await ship(manager)
    return str(lsn), segment


async def fetch(archive: dict, archive_key: bytes, target: Path) -> int:
    """Every archived segment into `target` (for restore_command), each one
    authenticated; the number fetched."""
    store = objectstore.from_environment()
    found = await store.list(archive["container"], archive["prefix"])
    for info in found:
        name = info.name[len(archive["prefix"]):]
        with open(target / name, "wb") as out:
            async for chunk in unseal(store.get(info.container, info.name), segment_key(archive_key, name), None):
                await asyncio.to_thread(out.write, chunk)
        ENGINE.chown(target / name)
    return len(found)
