"""Databases, accounts (user@host) and root on a MariaDB instance (datastore name
`mysql`), end to end through the bus with python-troveclient, every effect checked
with a real MySQL client (PyMySQL) over the instance's address."""
from __future__ import annotations

import pymysql
import pytest
import requests
from troveclient import exceptions as trove_exc

from tests.conftest import trove, wait_for
from tests.e2e.support import assert_secrets_nowhere, wait_active, wait_gone
from tests.e2e.test_mariadb_instances import MARIADBD, installed_mariadb_version

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not MARIADBD.exists(), reason="MariaDB is not installed")]

SEED, ALICE_1, ALICE_2, BOB = "Seed-pass-1", "Alice-pass-1", "Alice-pass-2", "Bob-pass-1"
SECRETS = [SEED, ALICE_1, ALICE_2, BOB, "Chosen-root-pass-1"]  # + root's generated
# wrong password / no such account (the server answers either when no account matches)
ACCESS_DENIED, DB_ACCESS_DENIED, KILLED = (1045, 1698), 1044, (2013, 4031, 2006)


@pytest.fixture(scope="module")
def my(stack):
    client = trove(stack)
    inst = client.instances.create("accounts-mysql", "d1", volume={"size": 1}, datastore="mysql",
                                   datastore_version=installed_mariadb_version(), databases=[{"name": "seeddb"}],
                                   users=[{"name": "seed", "password": SEED, "databases": [{"name": "seeddb"}]}])
    yield wait_active(client, inst.id)
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)


def connect(my, user: str, password: str, database: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(host=my.ip[0], port=3306, user=user, password=password, database=database,
                           connect_timeout=5, autocommit=True)


def refused(my, user: str, password: str, database: str | None = None) -> int:
    with pytest.raises(pymysql.err.OperationalError) as error:
        connect(my, user, password, database)
    return error.value.args[0]


def can_connect(my, user: str, password: str, database: str | None = None) -> bool:
    try:
        connect(my, user, password, database).close()
        return True
    except pymysql.err.OperationalError:
        return False


def admin(stack, my) -> pymysql.connections.Connection:
    """As the agent: root over the instance's socket (unix_socket authentication)."""
    return pymysql.connect(unix_socket=str(stack.home / "instances" / my.id / "run" / "mysqld.sock"),
                           user="root", autocommit=True)


def query(conn, sql: str, *args):
    with conn.cursor() as cur:
        cur.execute(sql, args or None)
        return cur.fetchall()


def users_listed(client, my) -> dict:
    return {(u.name, u.host): sorted(d["name"] for d in u.databases) for u in client.users.list(my.id)}


def test_databases_accounts_grants_and_passwords(stack, my):
    client = trove(stack)
    assert [d.name for d in client.databases.list(my.id)] == ["seeddb"]
    assert users_listed(client, my) == {("seed", "%"): ["seeddb"]}

    client.databases.create(my.id, [{"name": "sales_db", "character_set": "utf8mb4", "collate": "utf8mb4_bin"},
                                    {"name": "hr"}])
    # bob may log in only from 127.*: the client here connects from the instance's 127.x address
    client.users.create(my.id, [{"name": "alice", "password": ALICE_1, "databases": [{"name": "sales_db"}]},
                                {"name": "bob", "password": BOB, "host": "127.%"}])
    client.users.grant(my.id, "alice", ["hr"], hostname="%")
    wait_for(lambda: users_listed(client, my) == {("seed", "%"): ["seeddb"], ("alice", "%"): ["hr", "sales_db"],
                                                   ("bob", "127.%"): []}, 30, what="alice and bob listed")
    shown = client.users.get(my.id, "bob", "127.%")  # name@host in the URL, dots as %2e
    assert (shown.name, shown.host, shown.databases) == ("bob", "127.%", [])
    with admin(stack, my) as conn:
        assert query(conn, "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                           "WHERE SCHEMA_NAME = 'sales_db'") == (("utf8mb4_bin",),)

    for database in ("sales_db", "hr"):
        with connect(my, "alice", ALICE_1, database) as conn:
            query(conn, "CREATE TABLE orders (id INT PRIMARY KEY)")
            query(conn, "INSERT INTO orders VALUES (1)")
    with connect(my, "bob", BOB) as conn:
        assert {row[0] for row in query(conn, "SHOW DATABASES")} == {"information_schema"}
    assert refused(my, "bob", BOB, "sales_db") == DB_ACCESS_DENIED

    client.users.revoke(my.id, "alice", "hr")
    wait_for(lambda: [d.name for d in client.users.list_access(my.id, "alice")] == ["sales_db"], 30,
             what="hr revoked")
    assert refused(my, "alice", ALICE_1, "hr") == DB_ACCESS_DENIED

    # renamed: the password works under the new name only
    client.users.update_attributes(my.id, "alice", newuserattr={"name": "alicia"}, hostname="%")
    wait_for(lambda: ("alicia", "%") in users_listed(client, my), 30, what="alice renamed")
    with connect(my, "alicia", ALICE_1, "sales_db") as conn:
        assert query(conn, "SELECT count(*) FROM orders") == ((1,),)
    assert refused(my, "alice", ALICE_1) in ACCESS_DENIED

    # moved to another host: bob can no longer log in from here
    client.users.update_attributes(my.id, "bob", newuserattr={"host": "10.%"}, hostname="127.%")
    wait_for(lambda: ("bob", "10.%") in users_listed(client, my), 30, what="bob moved")
    assert refused(my, "bob", BOB) in ACCESS_DENIED

    client.users.change_passwords(my.id, [{"name": "alicia", "host": "%", "password": ALICE_2}])
    wait_for(lambda: can_connect(my, "alicia", ALICE_2, "sales_db"), 30, what="alicia's new password")
    assert refused(my, "alicia", ALICE_1, "sales_db") in ACCESS_DENIED

    # a deleted database is gone with its grants; a deleted user is gone
    with admin(stack, my) as conn:  # grants are kept with _ escaped (GRANT ... ON `sales\\_db`.*)
        assert query(conn, "SELECT User, Db FROM mysql.db WHERE Db LIKE 'sales%'") == (("alicia", "sales\\_db"),)
    client.databases.delete(my.id, "sales_db")
    client.users.delete(my.id, "bob", "10.%")
    wait_for(lambda: "sales_db" not in [d.name for d in client.databases.list(my.id)]
             and ("bob", "10.%") not in users_listed(client, my), 30, what="sales and bob deleted")
    assert users_listed(client, my)[("alicia", "%")] == []
    with admin(stack, my) as conn:
        assert "sales_db" not in {row[0] for row in query(conn, "SHOW DATABASES")}
        assert query(conn, "SELECT User FROM mysql.db WHERE Db LIKE 'sales%'") == ()
        assert query(conn, "SELECT User FROM mysql.global_priv WHERE User = 'bob'") == ()
    assert refused(my, "alicia", ALICE_2, "sales_db") == DB_ACCESS_DENIED
    # a database made again under the same name is not open to whom the old one was granted
    client.databases.create(my.id, [{"name": "sales_db"}])
    wait_for(lambda: "sales_db" in [d.name for d in client.databases.list(my.id)], 30, what="sales_db again")
    assert refused(my, "alicia", ALICE_2, "sales_db") == DB_ACCESS_DENIED


def test_root_enable_show_disable(stack, my):
    client = trove(stack)
    assert client.root.is_instance_root_enabled(my.id).rootEnabled is False
    with pytest.raises(trove_exc.NotFound):
        client.root.disable_instance_root(my.id)

    name, password = client.root.create_instance_root(my.id)
    SECRETS.append(password)
    assert name == "root" and len(password) >= 32
    assert client.root.is_instance_root_enabled(my.id).rootEnabled is True
    session = connect(my, "root", password)
    assert query(session, "SELECT CURRENT_USER()") == (("root@%",),)
    grants = " ".join(row[0] for row in query(session, "SHOW GRANTS"))
    assert "ALL PRIVILEGES ON *.*" in grants and "WITH GRANT OPTION" in grants
    query(session, "CREATE DATABASE made_by_root")

    client.root.disable_instance_root(my.id)
    assert client.root.is_instance_root_enabled(my.id).rootEnabled is False
    assert refused(my, "root", password) in ACCESS_DENIED
    with pytest.raises(pymysql.err.OperationalError) as ended:
        query(session, "SELECT 1")  # its open session was closed
    assert ended.value.args[0] in KILLED
    # the agent's own root@localhost (over the socket) is untouched
    with admin(stack, my) as conn:
        assert query(conn, "SELECT CURRENT_USER()") == (("root@localhost",),)

    name, password = client.root.create_instance_root(my.id, root_password="Chosen-root-pass-1")
    assert (name, password) == ("root", "Chosen-root-pass-1")
    assert can_connect(my, "root", password, "made_by_root")
    client.root.disable_instance_root(my.id)
    assert refused(my, "root", password) in ACCESS_DENIED


def test_errors(stack, my):
    base = f"{stack.api_url}/v1.0/{stack.project}/instances/{my.id}"

    def call(method, path, **kw):
        return requests.request(method, base + path, headers={"X-Auth-Token": stack.member_token}, timeout=30,
                                **kw)

    def fault(response, code: int) -> str:
        assert response.status_code == code, response.text
        [(_name, body)] = response.json().items()
        return body["message"]

    assert "already exists" in fault(call("POST", "/databases", json={"databases": [{"name": "seeddb"}]}), 400)
    assert "reserved" in fault(call("POST", "/databases", json={"databases": [{"name": "mysql"}]}), 400)
    assert "not a valid name" in fault(call("POST", "/databases", json={"databases": [
        {"name": "x", "collate": "utf8'; DROP DATABASE seeddb; --"}]}), 400)
    assert "reserved" in fault(call("POST", "/users", json={"users": [{"name": "root", "password": "x"}]}), 400)
    assert "not valid" in fault(call("POST", "/users", json={"users": [{"name": "u" * 33, "password": "x"}]}), 400)
    assert "host" in fault(call("POST", "/users", json={"users": [
        {"name": "h", "password": "x", "host": "a b"}]}), 400)
    assert "already exists" in fault(call("POST", "/users", json={"users": [{"name": "seed", "password": "x"}]}),
                                     400)
    fault(call("GET", "/users/seed%4010%2e0%2e0%2e1"), 404)  # seed@% exists, seed@10.0.0.1 does not
    fault(call("DELETE", "/users/seed/databases/nosuchdb"), 404)
    fault(call("GET", "/databases/seeddb"), 501)
    assert call("GET", "/users/seed%40%25").json()["user"]["databases"] == [{"name": "seeddb"}]


def test_no_password_in_logs_events_or_databases(stack, my, service_databases):
    assert_secrets_nowhere(stack, service_databases, SECRETS, stack.home / "instances" / my.id)
