"""Backups through python-troveclient against the whole stack: the agents stream real
pg_basebackup / mariadb-backup / RDB snapshots, compressed and encrypted, into the
local object store; the backup service records them and says so on
coffer.backup.events."""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pymysql
import pytest
import redis
import requests
from troveclient import exceptions as trove_exc

from plumbing import topics as T
from tests.conftest import trove, wait_for
from tests.e2e.support import installed_pg_version, topic_events, wait_active, wait_gone

pytestmark = pytest.mark.e2e

PASSWORD = "Backup-pass-1"
USERS = [{"name": "app", "password": PASSWORD, "databases": [{"name": "appdb"}]}]


def mariadb_version() -> str:
    out = subprocess.run(["/usr/sbin/mariadbd", "--version"], capture_output=True, text=True, timeout=10).stdout
    return re.search(r"Ver (\d+\.\d+)\.\d+", out).group(1)


def redis_version(client) -> str:
    return max(v.name for v in client.datastore_versions.list("redis"))


@pytest.fixture(scope="module")
def client(stack):
    return trove(stack)


@pytest.fixture(scope="module")
def instances(stack, client):
    """One running instance per engine, each with a little data."""
    made = {
        "postgresql": client.instances.create("bk-pg", "d1", volume={"size": 1}, datastore="postgresql",
                                              datastore_version=installed_pg_version(),
                                              databases=[{"name": "appdb"}], users=USERS),
        "mariadb": client.instances.create("bk-maria", "d1", volume={"size": 1}, datastore="mariadb",
                                           datastore_version=mariadb_version(), databases=[{"name": "appdb"}],
                                           users=USERS),
        "redis": client.instances.create("bk-redis", "d1", volume={"size": 1}, datastore="redis",
                                         datastore_version=redis_version(client),
                                         users=[{"name": "app", "password": PASSWORD}]),
    }
    active = {name: wait_active(client, inst.id, timeout=120) for name, inst in made.items()}
    yield {name: (inst.id, inst.ip[0]) for name, inst in active.items()}
    for inst in made.values():
        client.instances.delete(inst.id)
    for inst in made.values():
        wait_gone(client, inst.id, timeout=90)


def pg_write(address: str, statements: list[str]) -> None:
    with psycopg.connect(host=address, port=5432, user="app", password=PASSWORD, dbname="appdb",
                         autocommit=True) as conn:
        for s in statements:
            conn.execute(s)


def maria_write(address: str, statements: list[str]) -> None:
    with pymysql.connect(host=address, port=3306, user="app", password=PASSWORD, database="appdb",
                         autocommit=True) as conn, conn.cursor() as cur:
        for s in statements:
            cur.execute(s)


def pg_checksum(address: str) -> str:
    with psycopg.connect(host=address, port=5432, user="app", password=PASSWORD, dbname="appdb") as conn:
        return conn.execute("SELECT md5(string_agg(id || ':' || body, ',' ORDER BY id)) FROM notes").fetchone()[0]


def maria_checksum(address: str) -> str:
    with pymysql.connect(host=address, port=3306, user="app", password=PASSWORD, database="appdb") as conn, \
            conn.cursor() as cur:
        cur.execute("SELECT MD5(GROUP_CONCAT(id, ':', body ORDER BY id SEPARATOR ',')) FROM notes")
        return cur.fetchone()[0]


def restore(client, backup, name: str, users=USERS, databases=({"name": "appdb"},)):
    """A new instance from `backup`: the datastore and version are the backup's."""
    return client.instances.create(name, "d1", volume={"size": 1}, restorePoint={"backupRef": backup.id},
                                   databases=list(databases), users=users)


def wait_backup(client, backup_id: str, timeout: float = 120):
    def ended():
        b = client.backups.get(backup_id)
        return b if b.status in ("COMPLETED", "FAILED") else None
    return wait_for(ended, timeout, interval=0.2, what=f"backup {backup_id} to end")


def object_path(stack, backup) -> Path:
    store, _, path = backup.locationRef.partition("://")
    assert store == "local"
    return stack.home / "objects" / path


def test_a_postgresql_full_backup_is_stored_encrypted_and_announced(stack, client, instances):
    iid, address = instances["postgresql"]
    pg_write(address, ["CREATE TABLE notes (id int PRIMARY KEY, body text)",
                       "INSERT INTO notes SELECT g, 'secret-note-' || g FROM generate_series(1, 2000) g"])
    at_backup = pg_checksum(address)
    created = client.backups.create("pg-full", instance=iid, description="first")
    assert created.status == "NEW" and created.parent_id is None
    # the instance shows BACKUP while its backup runs, and takes no other action
    assert client.instances.get(iid).status == "BACKUP"
    with pytest.raises(trove_exc.UnprocessableEntity):
        client.backups.create("second", instance=iid)
    with pytest.raises(trove_exc.UnprocessableEntity):
        client.instances.restart(iid)
    done = wait_backup(client, created.id)
    assert done.status == "COMPLETED", getattr(done, "fail_reason", None)
    assert done.datastore["type"] == "postgresql" and done.datastore["version_id"]
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="the instance back to ACTIVE")
    stored = object_path(stack, done)
    data = stored.read_bytes()
    assert done.size == pytest.approx(len(data) / 1024 ** 3, abs=1e-6)
    assert b"secret-note-" not in data and b"PG_VERSION" not in data  # encrypted, not a plain tar
    assert done.id in [b.id for b in client.backups.list()]
    assert [b.id for b in client.instances.backups(iid)] == [done.id]

    events = [e for e in topic_events(stack.bootstrap, T.BACKUP_EVENTS) if e.subject == done.id]
    assert [e.data["status"] for e in events] == ["NEW", "BUILDING", "COMPLETED"]
    completed = events[-1].data
    assert completed["size_bytes"] == len(data) and len(completed["checksum"]) == 64
    assert completed["location"] == done.locationRef and events[-1].project == stack.project

    # a new instance from the backup holds exactly the data of the source at the backup
    pg_write(address, ["INSERT INTO notes VALUES (9999, 'after the backup')"])
    restored = restore(client, done, "pg-restored")
    assert restored.status == "BUILD"
    restored = wait_active(client, restored.id, timeout=120)
    assert restored.datastore["type"] == "postgresql"
    assert pg_checksum(restored.ip[0]) == at_backup != pg_checksum(address)
    client.instances.delete(restored.id)
    wait_gone(client, restored.id, timeout=90)


def test_postgresql_restores_to_a_point_in_time_between_two_writes(stack, client, instances):
    iid, address = instances["postgresql"]
    [full] = [b for b in client.instances.backups(iid) if b.status == "COMPLETED"]  # archiving began with it
    pg_write(address, ["CREATE TABLE moments (id int PRIMARY KEY, body text)",
                       "INSERT INTO moments VALUES (1, 'before')"])
    time.sleep(1)
    with psycopg.connect(host=address, port=5432, user="app", password=PASSWORD, dbname="appdb") as conn:
        target = conn.execute("SELECT now()").fetchone()[0]
    time.sleep(1)
    pg_write(address, ["INSERT INTO moments VALUES (2, 'after')"])
    notes_now = pg_checksum(address)
    # an operator's nudge instead of waiting for archive_timeout: close the segment holding both writes
    with psycopg.connect(host=str(stack.home / "instances" / iid / "run"), user="postgres", dbname="postgres",
                         autocommit=True) as conn:
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
    archived = stack.home / "objects" / f"coffer-backups-{stack.project}" / iid / "wal" / segment
    wait_for(archived.exists, 60, interval=0.2, what=f"WAL segment {segment} archived")

    restored = client.instances.create("pg-pitr", "d1", volume={"size": 1}, databases=[{"name": "appdb"}],
                                       users=USERS, restorePoint={"backupRef": full.id,
                                                                  "restore_time": target.isoformat()})
    restored = wait_active(client, restored.id, timeout=120)
    with psycopg.connect(host=restored.ip[0], port=5432, user="app", password=PASSWORD, dbname="appdb") as conn:
        assert conn.execute("SELECT id, body FROM moments ORDER BY id").fetchall() == [(1, "before")]
    assert pg_checksum(restored.ip[0]) == notes_now
    client.instances.delete(restored.id)

    # an incremental PostgreSQL backup is the WAL since its parent: restored, it ends where it was taken
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
    pg_write(address, ["INSERT INTO moments VALUES (3, 'in the incremental')"])
    incremental = wait_backup(client, client.backups.create("pg-inc", instance=iid, incremental=1).id)
    assert incremental.status == "COMPLETED" and incremental.parent_id == full.id, \
        getattr(incremental, "fail_reason", None)
    # and one taken with nothing written since (the server idle, its WAL segment empty) restores too
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
    idle = wait_backup(client, client.backups.create("pg-inc-idle", instance=iid, incremental=1).id)
    assert idle.status == "COMPLETED" and idle.parent_id == incremental.id, getattr(idle, "fail_reason", None)
    pg_write(address, ["INSERT INTO moments VALUES (4, 'after the incremental')"])
    from_incremental = wait_active(client, restore(client, idle, "pg-from-inc").id, timeout=120)
    with psycopg.connect(host=from_incremental.ip[0], port=5432, user="app", password=PASSWORD,
                         dbname="appdb") as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM moments ORDER BY id").fetchall()] == [1, 2, 3]
    client.instances.delete(from_incremental.id)
    wait_gone(client, restored.id, timeout=90)
    wait_gone(client, from_incremental.id, timeout=90)


def archive_names(stack, instance_id: str, kind: str) -> set[str]:
    """The instance's archived WAL segments or binlogs ("wal", "binlog") in the local store."""
    directory = stack.home / "objects" / f"coffer-backups-{stack.project}" / instance_id / kind
    return {p.name for p in directory.iterdir() if not p.name.startswith(".")}


def pg_switch_wal(stack, instance_id: str) -> None:
    """An operator's nudge instead of waiting for archive_timeout: close the current
    segment, and wait until it is archived."""
    with psycopg.connect(host=str(stack.home / "instances" / instance_id / "run"), user="postgres",
                         dbname="postgres", autocommit=True) as conn:
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
    wait_for(lambda: segment in archive_names(stack, instance_id, "wal"), 60, interval=0.2,
             what=f"WAL segment {segment} archived")


def test_deleting_backups_prunes_the_wal_archive_to_what_the_kept_ones_need(stack, client, instances):
    iid, address = instances["postgresql"]
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
    [first] = [b for b in client.instances.backups(iid) if b.parent_id is None]
    for n in (10, 11):  # segments closed before the next full backup starts
        pg_write(address, [f"INSERT INTO moments VALUES ({n}, 'before the second full')"])
        pg_switch_wal(stack, iid)
    older = archive_names(stack, iid, "wal")
    # (written into the new segment: the backup starts inside it, not at its very start,
    # where the segment before would count as the one it starts in)
    pg_write(address, ["INSERT INTO moments VALUES (12, 'just before the second full')"])
    second = wait_backup(client, client.backups.create("pg-full-2", instance=iid).id)
    assert second.status == "COMPLETED", getattr(second, "fail_reason", None)
    pg_write(address, ["INSERT INTO moments VALUES (13, 'after the second full')"])
    time.sleep(1)
    with psycopg.connect(host=address, port=5432, user="app", password=PASSWORD, dbname="appdb") as conn:
        target = conn.execute("SELECT now()").fetchone()[0]
    time.sleep(1)
    pg_write(address, ["INSERT INTO moments VALUES (14, 'after the moment')"])
    pg_switch_wal(stack, iid)
    before = archive_names(stack, iid, "wal")

    # the first chain goes (its incremental with it): what only it could use goes too
    client.backups.delete(first.id)
    wait_for(lambda: first.id not in {b.id for b in client.instances.backups(iid)}, 30, what="the first chain deleted")
    after = archive_names(stack, iid, "wal")
    assert older and not older & after, "segments older than the kept full backup are still archived"
    assert after & before and after & before < before  # (the agent may have shipped a newer one meanwhile)
    # and the kept backup still restores to any moment after it
    at_moment = client.instances.create("pg-pitr-pruned", "d1", volume={"size": 1}, databases=[{"name": "appdb"}],
                                        users=USERS, restorePoint={"backupRef": second.id,
                                                                   "restore_time": target.isoformat()})
    at_moment = wait_active(client, at_moment.id, timeout=120)
    with psycopg.connect(host=at_moment.ip[0], port=5432, user="app", password=PASSWORD, dbname="appdb") as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM moments WHERE id >= 10 ORDER BY id").fetchall()] == \
            [10, 11, 12, 13]
    client.instances.delete(at_moment.id)

    # the instance's last backup goes: nothing archived until then is needed
    client.backups.delete(second.id)
    wait_for(lambda: not client.instances.backups(iid), 30, what="the last backup deleted")
    assert not before & archive_names(stack, iid, "wal")
    wait_gone(client, at_moment.id, timeout=90)


def test_mariadb_full_and_incremental_chain_and_delete_takes_the_children(stack, client, instances):
    iid, address = instances["mariadb"]
    maria_write(address, ["CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)",
                          "INSERT INTO notes VALUES (1, 'one')"])
    full = wait_backup(client, client.backups.create("maria-full", instance=iid).id)
    assert full.status == "COMPLETED", getattr(full, "fail_reason", None)
    maria_write(address, ["INSERT INTO notes VALUES (2, 'two')"])
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
    incremental = client.backups.create("maria-inc", instance=iid, incremental=1)
    assert incremental.parent_id == full.id  # incremental=1 builds on the newest completed backup
    incremental = wait_backup(client, incremental.id)
    assert incremental.status == "COMPLETED", getattr(incremental, "fail_reason", None)
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
    maria_write(address, ["INSERT INTO notes VALUES (3, 'three')"])
    explicit = wait_backup(client, client.backups.create("maria-inc2", instance=iid, parent_id=incremental.id).id)
    assert explicit.status == "COMPLETED" and explicit.parent_id == incremental.id
    at_last_backup = maria_checksum(address)
    maria_write(address, ["INSERT INTO notes VALUES (4, 'after the backups')"])
    # restored from the chain full -> incremental -> incremental, prepared in order
    restored = wait_active(client, restore(client, explicit, "maria-restored").id, timeout=180)
    assert maria_checksum(restored.ip[0]) == at_last_backup != maria_checksum(address)
    with pymysql.connect(host=restored.ip[0], port=3306, user="app", password=PASSWORD, database="appdb") as conn, \
            conn.cursor() as cur:
        cur.execute("SELECT id FROM notes ORDER BY id")
        assert [r[0] for r in cur.fetchall()] == [1, 2, 3]
    client.instances.delete(restored.id)

    # to a moment between two writes: the chain, then the archived binlogs replayed up to it
    maria_write(address, ["INSERT INTO notes VALUES (5, 'before the moment')"])
    time.sleep(1.5)
    moment = datetime.now(timezone.utc)
    time.sleep(1.5)
    maria_write(address, ["INSERT INTO notes VALUES (6, 'after the moment')"])
    socket = str(stack.home / "instances" / iid / "run" / "mysqld.sock")
    with pymysql.connect(unix_socket=socket, user="root") as root, \
            root.cursor() as cur:  # an operator's nudge instead of waiting for the archive timeout
        cur.execute("SHOW MASTER STATUS")
        active = cur.fetchone()[0]
        cur.execute("FLUSH BINARY LOGS")
    archived = stack.home / "objects" / f"coffer-backups-{stack.project}" / iid / "binlog" / active
    wait_for(archived.exists, 60, interval=0.2, what=f"binlog {active} archived")
    at_moment = client.instances.create("maria-pitr", "d1", volume={"size": 1}, databases=[{"name": "appdb"}],
                                        users=USERS, restorePoint={"backupRef": explicit.id,
                                                                   "restore_time": moment.isoformat()})
    at_moment = wait_active(client, at_moment.id, timeout=180)
    with pymysql.connect(host=at_moment.ip[0], port=3306, user="app", password=PASSWORD, database="appdb") as conn, \
            conn.cursor() as cur:
        cur.execute("SELECT id FROM notes ORDER BY id")
        assert [r[0] for r in cur.fetchall()] == [1, 2, 3, 4, 5]
    client.instances.delete(at_moment.id)
    objects = [object_path(stack, b) for b in (full, incremental, explicit)]
    assert all(p.exists() for p in objects)
    # a second full backup; the binlog it starts in, closed, is archived
    with pymysql.connect(unix_socket=socket, user="root") as root, root.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        second_from = cur.fetchone()[0]
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
    second = wait_backup(client, client.backups.create("maria-full-2", instance=iid).id)
    assert second.status == "COMPLETED", getattr(second, "fail_reason", None)
    with pymysql.connect(unix_socket=socket, user="root") as root, root.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        active = cur.fetchone()[0]
        cur.execute("FLUSH BINARY LOGS")
    wait_for(lambda: active in archive_names(stack, iid, "binlog"), 60, interval=0.2, what=f"binlog {active} archived")
    before = archive_names(stack, iid, "binlog")
    assert any(name < second_from for name in before)

    client.backups.delete(full.id)

    def gone():
        left = {b.id for b in client.backups.list()}
        return not left & {full.id, incremental.id, explicit.id}
    wait_for(gone, 30, what="the chain deleted")
    wait_gone(client, restored.id, timeout=90)
    wait_gone(client, at_moment.id, timeout=90)
    assert not any(p.exists() for p in objects)
    with pytest.raises(trove_exc.NotFound):
        client.backups.get(incremental.id)
    # the binlogs older than the kept full backup went with the chain; the ones it needs stayed
    after = archive_names(stack, iid, "binlog")
    assert not {name for name in before if name < second_from} & after
    assert active in after and after & before < before
    # the last backup goes: nothing archived until then is needed
    client.backups.delete(second.id)
    wait_for(lambda: not client.instances.backups(iid), 30, what="the last backup deleted")
    assert not before & archive_names(stack, iid, "binlog")


def test_a_redis_backup_is_an_rdb_snapshot(stack, client, instances):
    iid, address = instances["redis"]
    r = redis.Redis(host=address, port=6379, username="app", password=PASSWORD, socket_timeout=5)
    r.set("greeting", "hello")
    done = wait_backup(client, client.backups.create("redis-full", instance=iid).id)
    assert done.status == "COMPLETED", getattr(done, "fail_reason", None)
    assert object_path(stack, done).stat().st_size > 0
    r.set("greeting", "changed after the backup")
    restored = wait_active(client, restore(client, done, "redis-restored",
                                           users=[{"name": "app", "password": PASSWORD}], databases=()).id)
    copy = redis.Redis(host=restored.ip[0], port=6379, username="app", password=PASSWORD, socket_timeout=5)
    assert copy.get("greeting") == b"hello"
    client.instances.delete(restored.id)
    wait_gone(client, restored.id, timeout=90)


def test_a_corrupted_backup_is_refused_and_no_instance_runs_half_restored(stack, client, instances):
    iid, address = instances["redis"]
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
    redis.Redis(host=address, port=6379, username="app", password=PASSWORD, socket_timeout=5).set("k", "v" * 100000)
    done = wait_backup(client, client.backups.create("to-corrupt", instance=iid).id)
    assert done.status == "COMPLETED", getattr(done, "fail_reason", None)
    path = object_path(stack, done)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40  # one bit, same size
    path.write_bytes(bytes(data))
    inst = restore(client, done, "from-corrupt", users=[{"name": "app", "password": PASSWORD}], databases=())

    def failed():
        got = client.instances.get(inst.id)
        assert got.status != "ACTIVE", "a corrupted backup was restored"
        return got if got.status == "ERROR" else None
    failed = wait_for(failed, 120, interval=0.2, what="the restore to fail")
    assert "could not be restored" in failed.fault["message"] and "authentication" in failed.fault["message"]
    assert not (stack.home / "instances" / inst.id).exists()  # nothing of it is left running
    client.instances.delete(inst.id)
    wait_gone(client, inst.id, timeout=90)


def test_restore_points_are_checked(client, instances):
    iid, _ = instances["redis"]
    with pytest.raises(trove_exc.NotFound):
        client.instances.create("x", "d1", volume={"size": 1},
                                restorePoint={"backupRef": "00000000-0000-0000-0000-000000000000"})
    [backup, *_] = client.instances.backups(iid)
    with pytest.raises(trove_exc.BadRequest):  # a Redis backup into PostgreSQL
        client.instances.create("x", "d1", volume={"size": 1}, datastore="postgresql",
                                datastore_version=installed_pg_version(), restorePoint={"backupRef": backup.id})


async def set_shown_size(backup_id: str, size_bytes: int) -> None:
    """The size the API's view of a backup records (a backup of more than a GB is
    too heavy to make on this machine: the view is told one was stored)."""
    from sqlalchemy import update

    from plumbing.config import database_url
    from plumbing.db import make_engine
    from services.api.tables import backups
    engine = make_engine(database_url("api"))
    try:
        async with engine.begin() as conn:
            await conn.execute(update(backups).where(backups.c.id == backup_id).values(size_bytes=size_bytes))
    finally:
        await engine.dispose()


def test_a_restore_into_a_volume_smaller_than_the_backup_is_refused(stack, client, instances):
    iid, _ = instances["redis"]
    backup = next(b for b in client.instances.backups(iid) if b.status == "COMPLETED")
    stored = round(backup.size * 1024 ** 3)
    in_use = {q.resource: q.in_use for q in client.quota.show(stack.project)}
    listed = {i.id for i in client.instances.list()}
    asyncio.run(set_shown_size(backup.id, 3 * 1024 ** 3))
    try:
        with pytest.raises(trove_exc.BadRequest) as refused:
            client.instances.create("too-small", "d1", volume={"size": 2}, restorePoint={"backupRef": backup.id},
                                    users=[{"name": "app", "password": PASSWORD}])
        assert "volume size (2 GB) is smaller than the backup size (3.00 GB)" in str(refused.value)
        # nothing was made, nothing counted
        assert {i.id for i in client.instances.list()} == listed
        assert {q.resource: q.in_use for q in client.quota.show(stack.project)} == in_use
    finally:
        asyncio.run(set_shown_size(backup.id, stored))


def test_bad_requests_get_trove_answers(client, instances):
    iid, _ = instances["redis"]
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
    with pytest.raises(trove_exc.NotFound):
        client.backups.create("x", instance="00000000-0000-0000-0000-000000000000")
    with pytest.raises(trove_exc.NotFound):
        client.backups.create("x", instance=iid, parent_id="00000000-0000-0000-0000-000000000000")
    with pytest.raises(trove_exc.NotFound):
        client.backups.get("00000000-0000-0000-0000-000000000000")
    # an engine that cannot do it says why, and the instance is back to ACTIVE
    failed = wait_backup(client, client.backups.create("redis-inc", instance=iid, incremental=1).id)
    assert failed.status == "FAILED" and "incremental" in failed.fail_reason
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE after a failed backup")


def osc_backup_strategy(stack, token: str, *args: str):
    """`openstack database backup strategy ...` as the holder of `token`."""
    return subprocess.run([str(Path(sys.executable).with_name("openstack")), "--os-auth-type", "admin_token",
                           "--os-token", token, "--os-endpoint", f"{stack.api_url}/v1.0/{stack.project}",
                           "database", "backup", "strategy", *args], capture_output=True, text=True, timeout=120)


def test_backup_strategies_choose_where_new_backups_go(stack, client, instances):
    from coffer.cli import _create_token
    iid, address = instances["redis"]
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
    redis.Redis(host=address, port=6379, username="app", password=PASSWORD, socket_timeout=5).set("where", "strategy")

    def strategies():
        return {s.instance_id: s.swift_container for s in client.backup_strategies.list()}

    def backed_up(**container):
        wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
        done = wait_backup(client, client.backups.create("strategy", instance=iid, **container).id)
        assert done.status == "COMPLETED", getattr(done, "fail_reason", None)
        assert object_path(stack, done).exists()
        return done

    # the project's strategy with the openstack CLI, the instance's with python-troveclient
    made = osc_backup_strategy(stack, stack.member_token, "create", "--swift-container", "team-backups", "-f", "json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout) == {"backend": "local", "instance_id": "", "project_id": stack.project,
                                       "swift_container": "team-backups"}
    client.backup_strategies.create(instance_id=iid, swift_container="redis-backups")
    wait_for(lambda: strategies() == {"": "team-backups", iid: "redis-backups"}, 30, what="both strategies listed")
    listed = osc_backup_strategy(stack, stack.member_token, "list", "--instance-id", iid, "-f", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"Project ID": stack.project, "Instance ID": iid,
                                          "Swift Container": "redis-backups"}]

    # the instance's strategy wins over the project's, a backup's own container over both
    into_instances = backed_up()
    assert into_instances.locationRef == f"local://redis-backups/{iid}/{into_instances.id}"
    one_off = backed_up(swift_container="one-off")
    assert one_off.locationRef.startswith("local://one-off/")
    client.backup_strategies.delete(instance_id=iid)
    wait_for(lambda: strategies() == {"": "team-backups"}, 30, what="the instance's strategy removed")
    into_project = backed_up()
    assert into_project.locationRef.startswith("local://team-backups/")
    deleted = osc_backup_strategy(stack, stack.member_token, "delete")
    assert deleted.returncode == 0, deleted.stderr
    wait_for(lambda: strategies() == {}, 30, what="the project's strategy removed")
    default = backed_up()
    assert default.locationRef.startswith(f"local://coffer-backups-{stack.project}/")

    # a backup in a strategy's container restores as any other
    restored = wait_active(client, restore(client, into_instances, "from-strategy",
                                           users=[{"name": "app", "password": PASSWORD}], databases=()).id)
    assert redis.Redis(host=restored.ip[0], port=6379, username="app", password=PASSWORD,
                       socket_timeout=5).get("where") == b"strategy"
    # an instance's strategy goes with the instance
    client.backup_strategies.create(instance_id=restored.id, swift_container="short-lived")
    wait_for(lambda: strategies() == {restored.id: "short-lived"}, 30, what="the restored instance's strategy")
    client.instances.delete(restored.id)
    wait_for(lambda: strategies() == {}, 90, what="the deleted instance's strategy removed")

    # Trove's answers to bad requests; a reader lists but does not set
    url, headers = f"{stack.api_url}/v1.0/{stack.project}/backup_strategies", {"X-Auth-Token": stack.member_token}
    for body, status in (({"backup_strategy": {}}, 400),
                         ({"backup_strategy": {"swift_container": "c", "backend": "swift"}}, 400),
                         ({"backup_strategy": {"swift_container": "../elsewhere"}}, 400),
                         ({"backup_strategy": {"swift_container": "c", "instance_id": str(uuid.uuid4())}}, 404)):
        answer = requests.post(url, headers=headers, json=body, timeout=30)
        assert answer.status_code == status, answer.text
    reader = {"X-Auth-Token": asyncio.run(_create_token(stack.project, "reader"))}
    assert requests.get(url, headers=reader, timeout=30).status_code == 200
    assert requests.post(url, headers=reader, json={"backup_strategy": {"swift_container": "c"}},
                         timeout=30).status_code == 403
    assert requests.get(url, headers=headers, params={"project_id": "another"}, timeout=30).status_code == 403
    for backup in (into_instances, one_off, into_project, default):
        client.backups.delete(backup.id)
    wait_gone(client, restored.id, timeout=90)


def test_a_backup_coffer_wrote_is_imported_from_another_place_and_restores(stack, client, instances):
    import shutil

    from plumbing import backupkeys
    iid, address = instances["redis"]
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
    redis.Redis(host=address, port=6379, username="app", password=PASSWORD, socket_timeout=5).set("from", "elsewhere")
    original = wait_backup(client, client.backups.create("to-import", instance=iid).id)
    assert original.status == "COMPLETED", getattr(original, "fail_reason", None)
    source = object_path(stack, original)
    manifest = json.loads(source.with_name(source.name + ".manifest").read_text())
    assert manifest["id"] == original.id and "data_key" not in manifest  # the key only wrapped
    # another deployment's object (same master key): the object and its manifest, no record of them here
    elsewhere = stack.home / "objects" / "other-deployment" / "exported"
    elsewhere.mkdir(parents=True)
    shutil.copy(source, elsewhere / "redis-backup")
    (elsewhere / "redis-backup.manifest").write_text(json.dumps(manifest))
    version_id = original.datastore["version_id"]

    def imported(location: str):
        made = client.backups.create("imported", None, restore_from=location, restore_ds_version=version_id,
                                     restore_size=original.size)
        assert made.status == "NEW" and made.instance_id is None
        return wait_for(lambda: (b := client.backups.get(made.id)).status in ("RESTORED", "FAILED") and b, 60,
                        interval=0.2, what="the import to end")

    done = imported("local://other-deployment/exported/redis-backup")
    assert done.status == "RESTORED", getattr(done, "fail_reason", None)
    assert done.locationRef == "local://other-deployment/exported/redis-backup" and done.size == original.size
    restored = wait_active(client, restore(client, done, "from-import", users=[{"name": "app", "password": PASSWORD}],
                                           databases=()).id)
    assert redis.Redis(host=restored.ip[0], port=6379, username="app", password=PASSWORD,
                       socket_timeout=5).get("from") == b"elsewhere"
    client.instances.delete(restored.id)

    # what cannot be imported fails with why: a backup recorded here, one sealed under another master key
    twice = imported(original.locationRef)
    assert twice.status == "FAILED" and f"backup {original.id}'s" in twice.fail_reason
    shutil.copy(source, elsewhere / "other-key")
    foreign = {**manifest, "wrapped_key": backupkeys.wrap(backupkeys.new_data_key(), backupkeys.new_data_key(),
                                                          original.id)}
    (elsewhere / "other-key.manifest").write_text(json.dumps(foreign))
    sealed_elsewhere = imported("local://other-deployment/exported/other-key")
    assert sealed_elsewhere.status == "FAILED" and "another master key" in sealed_elsewhere.fail_reason
    with pytest.raises(trove_exc.BadRequest):
        client.backups.create("x", None, restore_from="swift://c/o", restore_ds_version=version_id, restore_size=1)
    with pytest.raises(trove_exc.NotFound):
        client.backups.create("x", None, restore_from="local://c/o", restore_ds_version=str(uuid.uuid4()),
                              restore_size=1)
    # a refused import deletes nothing; an imported backup's object goes with it
    for backup in (twice, sealed_elsewhere, done):
        client.backups.delete(backup.id)

    def deleted(backup_id: str) -> bool:
        try:
            client.backups.get(backup_id)
            return False
        except trove_exc.NotFound:
            return True
    wait_for(lambda: all(deleted(b.id) for b in (twice, sealed_elsewhere, done)), 30, what="the imports deleted")
    assert source.exists() and (elsewhere / "other-key").exists() and not (elsewhere / "redis-backup").exists()
    client.backups.delete(original.id)
    wait_gone(client, restored.id, timeout=90)


def test_a_schedule_fires_and_retention_keeps_the_newest_chain(stack, client, instances):
    iid, _ = instances["redis"]
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
    url = f"{stack.api_url}/v1.0/{stack.project}/instances/{iid}/backup_schedule"
    headers = {"X-Auth-Token": stack.member_token}
    older = {b.id for b in client.instances.backups(iid)}
    assert older  # the chains of the tests above
    bad = requests.put(url, headers=headers, json={"backup_schedule": {"full": "61 * * * *"}}, timeout=30)
    assert bad.status_code == 400 and "minute" in bad.text
    put = requests.put(url, headers=headers, timeout=30, json={"backup_schedule": {
        "full": "* * * * *", "keep_last_chains": 1}})
    assert put.status_code == 200, put.text
    assert put.json()["backup_schedule"]["next_full_at"]
    assert requests.get(url, headers=headers, timeout=30).json()["backup_schedule"]["keep_last_chains"] == 1
    shown = subprocess.run([sys.executable, "-m", "coffer.cli", "backup-schedule", "show", iid, "--api",
                            stack.api_url, "--project", stack.project, "--token", stack.member_token],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "* * * * *" in shown.stdout, shown.stderr

    def scheduled_and_pruned():
        now = {b.id: b for b in client.instances.backups(iid)}
        new = [b for b in now.values() if b.id not in older and b.status == "COMPLETED"]
        return new if new and not (set(now) & older) else None
    [scheduled] = wait_for(scheduled_and_pruned, 150, interval=0.5,
                           what="a scheduled backup, and the older chains let go")
    assert scheduled.name.startswith("scheduled full")
    assert requests.delete(url, headers=headers, timeout=30).status_code == 202
    assert requests.get(url, headers=headers, timeout=30).status_code == 404


def accounts(client, instance_id: str) -> tuple[list[str], dict[str, list[str]], bool]:
    """An instance's databases, users (name@host: databases granted) and root, as the API lists them."""
    return (sorted(d.name for d in client.databases.list(instance_id)),
            {f"{u.name}@{u.host}": sorted(d["name"] for d in u.databases) for u in client.users.list(instance_id)},
            client.root.is_instance_root_enabled(instance_id).rootEnabled)


@pytest.mark.parametrize("engine", ["postgresql", "mariadb"])
def test_a_restored_instance_lists_the_databases_and_users_its_backup_brought(stack, client, instances, engine):
    iid, address = instances[engine]
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
    # some accounts through the API, some made by root in SQL (the API never heard of those)
    client.databases.create(iid, [{"name": "sales"}])
    client.users.create(iid, [{"name": "analyst", "password": PASSWORD, "databases": [{"name": "sales"}]}])
    wait_for(lambda: "analyst@%" in accounts(client, iid)[1], 30, what="analyst created")
    _, root_password = client.root.create_instance_root(iid)
    if engine == "postgresql":
        with psycopg.connect(host=address, port=5432, user="root", password=root_password, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE hr")
            conn.execute(f"CREATE ROLE clerk LOGIN PASSWORD '{PASSWORD}'")
            conn.execute("GRANT CONNECT ON DATABASE hr TO clerk")
        clerk = "clerk@%"
    else:
        with pymysql.connect(host=address, port=3306, user="root", password=root_password, autocommit=True) as conn, \
                conn.cursor() as cur:
            cur.execute("CREATE DATABASE hr")
            cur.execute("CREATE USER 'clerk'@'10.%%' IDENTIFIED BY %s", (PASSWORD,))
            cur.execute("GRANT ALL PRIVILEGES ON hr.* TO 'clerk'@'10.%'")
        clerk = "clerk@10.%"
    wait_for(lambda: client.instances.get(iid).status == "ACTIVE", 30, what="ACTIVE")
    backup = wait_backup(client, client.backups.create(f"{engine}-accounts", instance=iid).id, timeout=180)
    assert backup.status == "COMPLETED", getattr(backup, "fail_reason", None)

    # the create request names one more user, on a database the backup has too
    restored = restore(client, backup, f"{engine}-accounts-restored", databases=({"name": "hr"},),
                       users=[{"name": "auditor", "password": PASSWORD, "databases": [{"name": "hr"}]}])
    restored = wait_active(client, restored.id, timeout=180)
    databases, users, root_enabled = accounts(client, restored.id)
    assert databases == ["appdb", "hr", "sales"]  # never the engine's own (postgres, mysql, ...)
    assert users == {"app@%": ["appdb"], "analyst@%": ["sales"], clerk: ["hr"], "auditor@%": ["hr"]}
    assert root_enabled is True  # the source's root came along, enabled
    name, _, host = clerk.partition("@")
    assert [d.name for d in client.users.list_access(restored.id, name, hostname=host)] == ["hr"]
    # the view is the API's own from then on: an account action changes it as on any instance
    client.users.delete(restored.id, "analyst")
    wait_for(lambda: "analyst@%" not in accounts(client, restored.id)[1], 30, what="analyst deleted")
    client.root.disable_instance_root(iid)
    client.instances.delete(restored.id)
    wait_gone(client, restored.id, timeout=90)
