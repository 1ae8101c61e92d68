"""MariaDB: mariadb-backup's xbstream on stdout. A full backup copies everything;
an incremental one only the pages changed since its parent's last LSN (recorded in
the parent's meta as to_lsn). The tool writes its checkpoints beside the stream
(--extra-lsndir) so the LSN this backup reached is known for the next one."""
from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import AsyncIterator

from ..datastores.mariadb.engine_user import ENGINE_USER, admin_user
from . import binlog
from .process import feed, output_of, run_tool

MARIADB_BACKUP = "/usr/bin/mariadb-backup"
MBSTREAM = "/usr/bin/mbstream"


def to_lsn(checkpoints: str) -> int:
    m = re.search(r"^to_lsn\s*=\s*(\d+)", checkpoints, re.M)
    if not m:
        raise ValueError("mariadb-backup recorded no to_lsn")
    return int(m.group(1))


async def stream(manager, parent_meta: dict | None, meta: dict) -> AsyncIterator[bytes]:
    paths = manager.paths
    work = manager.config.directory / "backup-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    argv = [MARIADB_BACKUP, f"--defaults-file={paths.options}", "--backup", "--stream=xbstream",
            f"--user={admin_user()}", f"--socket={paths.socket}", f"--target-dir={work}",
            f"--extra-lsndir={work}"]
    if parent_meta is not None:
        argv.append(f"--incremental-lsn={parent_meta['to_lsn']}")
    # the backup's binlog position is in the active binlog or a later one: older ones are not its
    first = (await asyncio.to_thread(binlog.query, manager, "SHOW MASTER STATUS"))[0][0]
    try:
        async for chunk in output_of(argv):
            yield chunk
        meta.update(format="xbstream", to_lsn=to_lsn((work / "xtrabackup_checkpoints").read_text()),
                    incremental=parent_meta is not None, archive_from=first)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def restore(manager, chain: list[tuple[dict, AsyncIterator[bytes]]], scratch: Path,
                  options: dict) -> None:
    """The full backup's xbstream unpacked in `scratch`, each incremental one beside
    it, then prepared in order (mariadb-backup --prepare, --incremental-dir for each
    incremental): a data directory the server starts from as it is."""
    layers = []
    for index, (_meta, plain) in enumerate(chain):
        target = scratch if index == 0 else scratch.with_name(f"{scratch.name}.inc{index}")
        if index:
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(mode=0o700)
        await feed([MBSTREAM, "-x", "-C", str(target)], plain)
        layers.append(target)
    try:
        await run_tool([MARIADB_BACKUP, "--prepare", f"--target-dir={scratch}"])
        for incremental in layers[1:]:
            await run_tool([MARIADB_BACKUP, "--prepare", f"--target-dir={scratch}",
                            f"--incremental-dir={incremental}"])
    finally:
        for incremental in layers[1:]:
            shutil.rmtree(incremental, ignore_errors=True)
    await run_tool(["chown", "-R", f"{ENGINE_USER}:{ENGINE_USER}", str(scratch)])


async def finish_restore(manager, options: dict) -> None:
    """A restore to a moment: the archived binlogs replayed up to it on the running server."""
    if not options.get("restore_time"):
        return
    work = manager.config.directory / "restore-binlogs"
    try:
        await binlog.replay_until(manager, options["archive"], options["archive_key"], options["restore_time"],
                                  work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
