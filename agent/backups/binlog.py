"""MariaDB binlog archiving, for point-in-time restores.

From the instance's first backup on, the agent ships every closed binary log of the
data directory (sealed under a key derived per file from the instance's archive key,
as for PostgreSQL's WAL) into <prefix><file>; the active one is closed (FLUSH BINARY
LOGS) once it is ARCHIVE_TIMEOUT_SECONDS old, if events were written to it. A restore to a moment
prepares the backup chain, starts the server and replays the archived binlogs from
the backup's binlog position up to that moment with mariadb-binlog."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from plumbing import objectstore
from plumbing.sealedstream import Sealing, unseal

from ..datastores.mariadb import users
from . import wal
from .process import feed, file_chunks, output_of

SHIPPED_FILE = "binlog-shipped.json"
MARIADB_BINLOG, MARIADB = "/usr/bin/mariadb-binlog", "/usr/bin/mariadb"


def query(manager, sql: str) -> list[tuple]:
    conn = users.connect(str(manager.paths.socket), manager.admin)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


async def enable(manager, archive: dict, archive_key_b64: str) -> None:
    """Binary logging is always on (replication): archiving only needs the key and where."""
    directory = manager.config.directory
    wal.write_private(directory / wal.KEY_FILE, archive_key_b64)
    wal.write_private(directory / wal.SETTINGS_FILE, json.dumps(archive))


_shipping = asyncio.Lock()
_last_flush = [time.monotonic()]
_fresh: list[tuple | None] = [None]  # (file, position) of the active binlog right after the last rotation


async def ship(manager) -> int:
    """Ship the closed binlogs not shipped yet (closing the active one first when it is
    old enough); how many were shipped."""
    directory = manager.config.directory
    try:
        archive = json.loads((directory / wal.SETTINGS_FILE).read_text())
        key = base64.b64decode((directory / wal.KEY_FILE).read_text())
    except FileNotFoundError:
        return 0
    async with _shipping:
        if time.monotonic() - _last_flush[0] > wal.ARCHIVE_TIMEOUT_SECONDS:
            status = (await asyncio.to_thread(query, manager, "SHOW MASTER STATUS"))[0][:2]
            if status != _fresh[0]:  # only a binlog with events in it is worth closing
                await asyncio.to_thread(query, manager, "FLUSH BINARY LOGS")
                _fresh[0] = (await asyncio.to_thread(query, manager, "SHOW MASTER STATUS"))[0][:2]
            _last_flush[0] = time.monotonic()
        logs = await asyncio.to_thread(query, manager, "SHOW BINARY LOGS")
        closed = [row[0] for row in logs[:-1]]
        shipped_path = directory / SHIPPED_FILE
        shipped = set(json.loads(shipped_path.read_text())) if shipped_path.exists() else set()
        store = objectstore.from_environment()
        count = 0
        for name in closed:
            if name in shipped:
                continue
            sealing = Sealing(wal.segment_key(key, name))
            await store.put(archive["container"], archive["prefix"] + name,
                            sealing.seal(file_chunks(manager.paths.data / name)), {"format": "coffer-binlog-1"})
            shipped.add(name)
            wal.write_private(shipped_path, json.dumps(sorted(shipped)))
            count += 1
        return count


async def replay_until(manager, archive: dict, archive_key: bytes, restore_time: str, work: Path) -> None:
    """Apply the archived binlogs from the restored backup's position up to `restore_time`."""
    info = (manager.paths.data / "xtrabackup_binlog_info").read_text().split()
    first, position = info[0], info[1]
    store = objectstore.from_environment()
    names = sorted(o.name[len(archive["prefix"]):] for o in await store.list(archive["container"], archive["prefix"]))
    names = [n for n in names if n >= first]
    if not names or names[0] != first:
        raise RuntimeError(f"the binlog archive does not hold {first}, where the backup ends")
    work.mkdir(mode=0o700, exist_ok=True)
    for name in names:
        with open(work / name, "wb") as out:
            async for chunk in unseal(store.get(archive["container"], archive["prefix"] + name),
                                      wal.segment_key(archive_key, name), None):
                await asyncio.to_thread(out.write, chunk)
    stop = datetime.fromisoformat(restore_time).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    # mariadb-binlog reads --stop-datetime in its own time zone: UTC
    argv = [MARIADB_BINLOG, f"--start-position={position}", f"--stop-datetime={stop}",
            *[str(work / n) for n in names]]
    events = output_of(argv, env={**os.environ, "TZ": "UTC"})
    await feed([MARIADB, f"--socket={manager.paths.socket}", f"--user={manager.admin}", "--binary-mode"], events)
