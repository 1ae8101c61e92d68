"""Replicas end to end, for each engine: python-troveclient makes a replica of a
primary (`replica_of`), the views show the set, and data written to the primary is
read on the replica with a real client; the set's stable endpoint (`hostname`)
reaches the primary."""
from __future__ import annotations

import psycopg
import pymysql
import pytest
import redis
from troveclient.apiclient import exceptions

from tests.conftest import trove, wait_for
from tests.e2e.support import installed_pg_version, redis_admin, wait_active, wait_gone
from tests.e2e.test_mariadb_instances import installed_mariadb_version
from tests.e2e.test_redis_instances import redis_version

pytestmark = pytest.mark.e2e
PASSWORD = "S3cret-pass"
APP_USER = [{"name": "app", "password": PASSWORD, "databases": [{"name": "appdb"}]}]


def make_set(client, datastore: str, version: str, **create):
    primary = client.instances.create(f"{datastore}-primary", "d1", volume={"size": 1}, datastore=datastore,
                                      datastore_version=version, **create)
    primary = wait_active(client, primary.id, timeout=90)
    replica = client.instances.create(f"{datastore}-replica", None, replica_of=primary.id)
    assert replica.status == "BUILD" and replica.replica_of["id"] == primary.id
    replica = wait_active(client, replica.id, timeout=120)
    primary = client.instances.get(primary.id)
    assert [r["id"] for r in primary.replicas] == [replica.id]
    assert replica.replica_of["id"] == primary.id and not hasattr(primary, "replica_of")
    assert replica.flavor["id"] == primary.flavor["id"] and replica.volume["size"] == primary.volume["size"]
    assert replica.ip[0] != primary.ip[0]
    assert primary.hostname == replica.hostname  # the set's endpoint, on every member
    return primary, replica


def delete_all(client, *instances) -> None:
    """In order, each gone before the next: a primary is deleted only once its
    replicas are (Trove's rule)."""
    for inst in instances:
        client.instances.delete(inst.id)
        wait_gone(client, inst.id, timeout=60)


def test_postgresql_replica_follows_its_primary(stack):
    client = trove(stack)
    primary, replica = make_set(client, "postgresql", installed_pg_version(), databases=[{"name": "appdb"}],
                                users=APP_USER)
    with psycopg.connect(host=primary.ip[0], user="app", password=PASSWORD, dbname="appdb", autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, item text)")
        conn.execute("INSERT INTO orders VALUES (1, 'book'), (2, 'pen')")

    def replicated():
        with psycopg.connect(host=replica.ip[0], user="app", password=PASSWORD, dbname="appdb",
                             connect_timeout=5) as conn:
            try:
                return conn.execute("SELECT item FROM orders ORDER BY id").fetchall() or None
            except psycopg.errors.UndefinedTable:
                return None
    assert wait_for(replicated, 30, what="the rows on the replica") == [("book",), ("pen",)]
    with psycopg.connect(host=replica.ip[0], user="app", password=PASSWORD, dbname="appdb") as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO orders VALUES (3, 'ink')")
    # the stable endpoint reaches the primary, at the engine's default port
    with psycopg.connect(host=primary.hostname, port=5432, user="app", password=PASSWORD, dbname="appdb",
                         autocommit=True) as conn:
        conn.execute("INSERT INTO orders VALUES (3, 'ink')")
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    with pytest.raises(exceptions.Forbidden):  # Trove: detach or delete the replicas first
        client.instances.delete(primary.id)
    client.instances.delete(replica.id)
    wait_gone(client, replica.id, timeout=60)

    def slots():
        with psycopg.connect(host=str(stack.home / "instances" / primary.id / "run"), user="postgres",
                             dbname="postgres") as conn:
            return conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0]
    wait_for(lambda: slots() == 0, 30, what="the deleted replica's slot dropped")  # no WAL kept for it
    delete_all(client, primary)


def test_mariadb_replica_follows_its_primary(stack):
    client = trove(stack)
    primary, replica = make_set(client, "mariadb", installed_mariadb_version(), databases=[{"name": "appdb"}],
                                users=APP_USER)

    def connect(address):
        return pymysql.connect(host=address, user="app", password=PASSWORD, database="appdb", autocommit=True,
                               connect_timeout=5)
    with connect(primary.ip[0]) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE orders (id int PRIMARY KEY, item text)")
        cur.execute("INSERT INTO orders VALUES (1, 'book'), (2, 'pen')")

    def replicated():
        with connect(replica.ip[0]) as conn, conn.cursor() as cur:
            try:
                cur.execute("SELECT item FROM orders ORDER BY id")
            except pymysql.err.ProgrammingError:
                return None
            return cur.fetchall() or None
    assert wait_for(replicated, 30, what="the rows on the replica") == (("book",), ("pen",))
    # the replica lists the accounts its copy of the primary brought
    assert [d.name for d in client.databases.list(replica.id)] == ["appdb"]
    assert [(u.name, u.host) for u in client.users.list(replica.id)] == [("app", "%")]
    # accounts are changed on the primary: a replica refuses, naming it
    with pytest.raises(exceptions.BadRequest, match=f"replica of {primary.id}"):
        client.databases.create(replica.id, [{"name": "on_replica"}])
    # a database made on the primary since reaches the replica's engine (not yet its list) ...
    client.databases.create(primary.id, [{"name": "late"}])

    def engine_databases(instance_id):
        socket = str(stack.home / "instances" / instance_id / "run" / "mysqld.sock")
        with pymysql.connect(unix_socket=socket, user="root") as conn, conn.cursor() as cur:
            cur.execute("SHOW DATABASES")
            return {name for (name,) in cur.fetchall()}
    wait_for(lambda: "late" in engine_databases(replica.id), 30, what="the new database on the replica")

    # detached (Trove: PUT replica_of null), the replica is a primary of its own
    client.instances.update(replica.id, detach_replica_source=True)

    def standalone():
        shown = client.instances.get(replica.id)
        return shown if shown.status == "ACTIVE" and not hasattr(shown, "replica_of") else None
    wait_for(standalone, 60, what="the replica detached")
    assert not hasattr(client.instances.get(primary.id), "replicas")
    # ... and its list once detached: the agent named what the engine holds
    assert sorted(d.name for d in client.databases.list(replica.id)) == ["appdb", "late"]
    with connect(replica.ip[0]) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO orders VALUES (3, 'ink')")
        cur.execute("SELECT @@read_only")
        assert cur.fetchone() == (0,)
    delete_all(client, replica, primary)


def test_redis_replica_follows_its_primary(stack):
    client = trove(stack)
    primary, replica = make_set(client, "redis", redis_version(client),
                                users=[{"name": "app", "password": PASSWORD}])
    redis.Redis(host=primary.ip[0], port=6379, username="app", password=PASSWORD).set("greeting", "hello")
    on_replica = redis_admin(stack.home / "instances" / replica.id, replica.ip[0])
    assert wait_for(lambda: on_replica.get("greeting"), 30, what="the key on the replica") == b"hello"
    assert on_replica.info("replication")["role"] == "slave"
    delete_all(client, replica, primary)
