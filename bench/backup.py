"""Backup and restore throughput (MB/s of the database's plain backup stream) for a
~200 MB PostgreSQL and MariaDB database, next to the raw tools measured in the same
run with the same compression (zstd level 1), into a local directory:

  raw backup    pg_basebackup -Ft -D - | zstd -1      mariadb-backup --stream=xbstream | zstd -1
  raw restore   zstd -d | tar -x                      zstd -d | mbstream -x; mariadb-backup --prepare
                zstd -d | tar -x -b 2048
  Coffer        the agent's backup verb (stream -> zstd -> AES-256-GCM -> local object store, SHA-256)
                and its restore path (object store -> authenticate -> zstd -d -> SHA-256 -> tool)

The engines run through the agent's own datastore managers (no bus, no services):
this measures the byte path. The PostgreSQL restore has two baselines: tar with its
default 10 KiB records, and tar with the 1 MiB records Coffer's restore gives it (the
equally tuned one). Raw and Coffer take turns going first, so that a drift
of the machine's load (or the page cache's writeback) falls on both alike. Beside the
wall clock, the CPU seconds each side spent (this process and the tools it ran, not the
database server): on a shared machine the wall clock swings, the CPU cost much less.
Run: .venv/bin/python bench/backup.py [MB] [runs]"""
from __future__ import annotations

import asyncio
import base64
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from agent.backups import mariadb as maria_backups  # noqa: E402
from agent.backups import postgresql as pg_backups  # noqa: E402
from agent.datastores.mariadb import users as maria_users  # noqa: E402
from agent.datastores.postgresql import users as pg_users  # noqa: E402
from agent.datastores.postgresql.engine_user import ENGINE as PG_USER, bindir  # noqa: E402
from agent.manager import InstanceConfig, load  # noqa: E402
from agent.verbs.backup import backup as backup_verb  # noqa: E402
from plumbing import backupkeys, objectstore  # noqa: E402
from plumbing.sealedstream import unseal  # noqa: E402

RUNS = 3
MB = 1024 * 1024


def config(home: Path, datastore: str, version: str, port: int) -> InstanceConfig:
    directory = home / "instances" / datastore
    directory.mkdir(parents=True)
    os.chmod(directory, 0o755)
    return InstanceConfig(instance_id=f"bench-{datastore}", host="bench", address=f"127.8.{random.randint(1, 250)}."
                          f"{random.randint(2, 250)}", port=port, datastore=datastore, version=version, ram_mb=1024,
                          vcpus=2, volume_gb=10, kafka_bootstrap="", templates_dir=str(home / "templates"),
                          directory=directory)


def clocks() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its waited-for children)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def since(started: tuple[float, float]) -> tuple[float, float]:
    now = clocks()
    return now[0] - started[0], now[1] - started[1]


def shell(command: str) -> tuple[float, float]:
    started = clocks()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True, cwd="/", stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    return since(started)


async def load_postgresql(manager, megabytes: int) -> None:
    rows = megabytes * MB // 170
    async with await pg_users.connect(str(manager.socket_dir), manager.config.port) as conn:
        await conn.execute("CREATE TABLE filler AS SELECT g AS id, md5(g::text) || md5(random()::text) "
                           f"|| repeat('x', 80) AS body FROM generate_series(1, {rows}) g")
        await conn.execute("CHECKPOINT")


def load_mariadb(manager, megabytes: int) -> None:
    rows = megabytes * MB // 170
    conn = maria_users.connect(str(manager.paths.socket), manager.admin)
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE filler")
        cur.execute("USE filler")
        # in parts: one statement of all the rows outlasts the admin connection's read
        # timeout on a loaded machine
        step = rows // 8 + 1
        for first in range(1, rows + 1, step):
            rows_sql = (f"SELECT seq AS id, CONCAT(MD5(seq), MD5(RAND()), REPEAT('x', 80)) AS body "
                        f"FROM seq_{first}_to_{min(first + step - 1, rows)}")
            cur.execute(f"CREATE TABLE filler.filler ENGINE=InnoDB AS {rows_sql}" if first == 1
                        else f"INSERT INTO filler.filler {rows_sql}")
    conn.close()


async def coffer_backup(manager, n: int) -> tuple[tuple[float, float], int, dict]:
    key = backupkeys.new_data_key()
    started = clocks()
    out = await backup_verb(manager, {"backup_id": f"b{n}", "container": "bench", "object": f"{n}"},
                            {"data_key": base64.b64encode(key).decode()})
    return since(started), out["plain_bytes"], {"key": key, **out}


async def coffer_restore(manager, module, n: int, made: dict, scratch: Path) -> tuple[float, float]:
    store = objectstore.from_environment()
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700)
    started = clocks()
    plain = unseal(store.get("bench", f"{n}"), made["key"], made["sha256"])
    await module.restore(manager, [(made["meta"], plain)], scratch, {})
    return since(started)


def summary(name: str, plain_bytes: int, raw: list[tuple[float, float]], coffer: list[tuple[float, float]]) -> str:
    """MB/s and their ratio from the median wall clocks, the spread of the runs' ratios,
    and the median CPU seconds of each side."""
    raw_mbs = plain_bytes / MB / statistics.median(wall for wall, _cpu in raw)
    coffer_mbs = plain_bytes / MB / statistics.median(wall for wall, _cpu in coffer)
    ratios = [r[0] / c[0] for r, c in zip(raw, coffer)]
    return (f"{name:<38} raw {raw_mbs:6.1f} MB/s  Coffer {coffer_mbs:6.1f} MB/s  ratio {coffer_mbs / raw_mbs:.2f}"
            f" (runs {min(ratios):.2f}-{max(ratios):.2f})  CPU s raw {statistics.median(c for _w, c in raw):.2f}"
            f" Coffer {statistics.median(c for _w, c in coffer):.2f}  (medians of {len(raw)};"
            f" {plain_bytes / MB:.0f} MB stream)")


async def in_turns(n: int, raw, coffer) -> tuple[object, object]:
    """(raw(), await coffer()): what each returned (clocks, ...), the raw tool first in even runs."""
    if n % 2:
        made = await coffer()
        return raw(), made
    seconds = raw()
    return seconds, await coffer()


def each(raws: dict[str, Callable[[], tuple[float, float]]]) -> Callable[[], dict[str, tuple[float, float]]]:
    """One call that runs every raw pipeline of `raws` in turn: their clocks by name."""
    return lambda: {name: raw() for name, raw in raws.items()}


async def compare(engine: str, runs: int, manager, engine_backups, scratch: Path, raw_backup,
                  raw_restores: dict[str, Callable[[], tuple[float, float]]]) -> list[str]:
    """`runs` backups and restores, raw and Coffer taking turns; a summary of the
    backup, and of the restore against each raw restore pipeline (named by its tool)."""
    raw_b, cof_b, cof_r = [], [], []
    raw_r: dict[str, list[tuple[float, float]]] = {name: [] for name in raw_restores}
    plain = 0
    for n in range(runs):
        seconds, (coffer_seconds, plain, made) = await in_turns(n, raw_backup, lambda: coffer_backup(manager, n))
        raw_b.append(seconds)
        cof_b.append(coffer_seconds)
        raw_seconds, coffer_seconds = await in_turns(
            n, each(raw_restores), lambda: coffer_restore(manager, engine_backups, n, made, scratch))
        for name, seconds in raw_seconds.items():
            raw_r[name].append(seconds)
        cof_r.append(coffer_seconds)
    return [summary(f"{engine} backup", plain, raw_b, cof_b)] + [
        summary(f"{engine} restore vs {name}", plain, raw_r[name], cof_r) for name in raw_restores]


async def bench_postgresql(home: Path, megabytes: int, runs: int) -> list[str]:
    version = sorted(p.name for p in Path("/usr/lib/postgresql").iterdir())[-1]
    manager = load(config(home, "postgresql", version, 5432))
    await manager.bootstrap()
    try:
        await load_postgresql(manager, megabytes)
        raw_dir = home / "raw-pg"
        raw_dir.mkdir()
        shutil.chown(raw_dir, "postgres", "postgres")
        basebackup = " ".join(PG_USER.argv([str(bindir(version) / "pg_basebackup"), "-h", str(manager.socket_dir),
                                            "-p", "5432", "-U", "postgres", "-w", "-D", "-", "-F", "tar", "-X",
                                            "fetch", "--checkpoint=fast", "--no-manifest"]))

        def raw_restore(*tar_options: str) -> Callable[[], tuple[float, float]]:
            def run() -> tuple[float, float]:
                target = raw_dir / "restored"
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir(mode=0o700)
                shutil.chown(target, "postgres", "postgres")
                untar = " ".join(PG_USER.argv(["tar", "-x", *tar_options, "-f", "-", "-C", str(target)]))
                return shell(f"zstd -d -q -c {raw_dir}/base.tar.zst | {untar}")
            return run

        coffers_records = ("-b", str(pg_backups.TAR_RECORD_BLOCKS))
        return await compare("PostgreSQL", runs, manager, pg_backups, home / "scratch-pg",
                             lambda: shell(f"{basebackup} | zstd -1 -q -f -o {raw_dir}/base.tar.zst"),
                             {"tar -x": raw_restore(),
                              f"tar -x {' '.join(coffers_records)}": raw_restore(*coffers_records)})
    finally:
        await manager.stop()


async def bench_mariadb(home: Path, megabytes: int, runs: int) -> list[str]:
    out = subprocess.run(["/usr/sbin/mariadbd", "--version"], capture_output=True, text=True).stdout
    version = out.split("Ver ")[1].split("-")[0].rsplit(".", 1)[0]
    manager = load(config(home, "mariadb", version, 3306))
    await manager.bootstrap()
    try:
        await asyncio.to_thread(load_mariadb, manager, megabytes)
        raw_dir = home / "raw-maria"
        raw_dir.mkdir()
        work = raw_dir / "work"
        tool = (f"mariadb-backup --defaults-file={manager.paths.options} --backup --stream=xbstream "
                f"--user={manager.admin} --socket={manager.paths.socket} --target-dir={work}")

        def raw_backup() -> tuple[float, float]:
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            return shell(f"{tool} | zstd -1 -q -f -o {raw_dir}/full.xb.zst")

        def raw_restore() -> tuple[float, float]:
            target = raw_dir / "restored"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            return shell(f"zstd -d -q -c {raw_dir}/full.xb.zst | mbstream -x -C {target} && "
                         f"mariadb-backup --prepare --target-dir={target}")

        return await compare("MariaDB", runs, manager, maria_backups, home / "scratch-maria", raw_backup,
                             {"mbstream -x": raw_restore})
    finally:
        await manager.stop()


async def main(megabytes: int, runs: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="coffer-bench-backup-", dir="/tmp"))
    os.chmod(home, 0o755)
    os.environ.update(COFFER_HOME=str(home), COFFER_OBJECT_STORE="local", COFFER_OBJECT_STORE_DIR=str(home / "objects"))
    try:
        lines = await bench_postgresql(home, megabytes, runs) + await bench_mariadb(home, megabytes, runs)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"\nbackup and restore throughput, ~{megabytes} MB databases, zstd level 1, encryption on (Coffer),"
          f" load average {os.getloadavg()[0]:.1f}:")
    for line in lines:
        print("  " + line)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200, int(sys.argv[2]) if len(sys.argv) > 2 else RUNS))
