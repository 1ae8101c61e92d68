"""Databases, users and root on a PostgreSQL instance, end to end through the bus:
python-troveclient (and a few `openstack database` commands) against the whole
stack, every effect checked with a real PostgreSQL client (psycopg) over the
instance's address."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import requests
from troveclient import exceptions as trove_exc

from coffer.cli import _create_token
from tests.conftest import trove, wait_for
from tests.e2e.support import assert_secrets_nowhere, installed_pg_version, wait_active, wait_gone

pytestmark = pytest.mark.e2e

SEED_PASSWORD, ALICE_1, ALICE_2, BOB_1, BOB_2 = "Seed-pass-1", "Alice-pass-1", "Alice-pass-2", "Bob-pass-1", "Bob-pass-2"
SECRETS = [SEED_PASSWORD, ALICE_1, ALICE_2, BOB_1, BOB_2, "Cli-pass-1", "Chosen-root-pass-1"]  # + root's generated


@pytest.fixture(scope="module")
def pg(stack):
    client = trove(stack)
    inst = client.instances.create("accounts-pg", "d1", volume={"size": 1}, datastore="postgresql",
                                   datastore_version=installed_pg_version(), databases=[{"name": "seeddb"}],
                                   users=[{"name": "seed", "password": SEED_PASSWORD,
                                           "databases": [{"name": "seeddb"}]}])
    yield wait_active(client, inst.id)
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)


def connect(pg, user: str, password: str, dbname: str) -> psycopg.Connection:
    return psycopg.connect(host=pg.ip[0], user=user, password=password, dbname=dbname, connect_timeout=5,
                           autocommit=True)


def can_connect(pg, user: str, password: str, dbname: str) -> bool:
    try:
        connect(pg, user, password, dbname).close()
        return True
    except psycopg.OperationalError:
        return False


def refused(pg, user: str, password: str, dbname: str) -> str:
    with pytest.raises(psycopg.OperationalError) as error:
        connect(pg, user, password, dbname)
    return str(error.value)


def admin_connection(stack, pg) -> psycopg.Connection:
    """As the agent connects: postgres over the instance's socket."""
    return psycopg.connect(host=str(stack.home / "instances" / pg.id / "run"), port=5432, user="postgres",
                           dbname="postgres", autocommit=True)


def users_listed(client, pg) -> dict:
    return {u.name: sorted(d["name"] for d in u.databases) for u in client.users.list(pg.id)}


def test_databases_users_grants_and_passwords(stack, pg):
    client = trove(stack)
    # what the create request asked for is listed once the instance is ACTIVE
    assert [d.name for d in client.databases.list(pg.id)] == ["seeddb"]
    assert users_listed(client, pg) == {"seed": ["seeddb"]}
    [seed] = client.users.list(pg.id)
    assert seed.host == "%"

    client.databases.create(pg.id, [{"name": "sales"}, {"name": "hr"}])
    client.users.create(pg.id, [{"name": "alice", "password": ALICE_1, "databases": [{"name": "sales"}]},
                                {"name": "bob", "password": BOB_1}])
    # asked before the create has completed: checked against what the instance will have
    client.users.grant(pg.id, "alice", ["hr"])
    wait_for(lambda: users_listed(client, pg) == {"seed": ["seeddb"], "alice": ["hr", "sales"], "bob": []},
             30, what="alice and bob listed with their grants")
    assert sorted(d.name for d in client.databases.list(pg.id)) == ["hr", "sales", "seeddb"]
    assert [d.name for d in client.users.list_access(pg.id, "alice")] == ["hr", "sales"]
    assert client.users.get(pg.id, "alice").databases == [{"name": "hr"}, {"name": "sales"}]

    # the new user creates a table in each granted database
    for dbname in ("sales", "hr"):
        with connect(pg, "alice", ALICE_1, dbname) as conn:
            conn.execute("CREATE TABLE orders (id int primary key)")
            conn.execute("INSERT INTO orders VALUES (1)")
    # a database is reachable only by the users it is granted to
    assert "permission denied for database" in refused(pg, "bob", BOB_1, "sales")
    assert "permission denied for database" in refused(pg, "seed", SEED_PASSWORD, "hr")

    # a revoked database is no longer reachable
    client.users.revoke(pg.id, "alice", "hr")
    wait_for(lambda: [d.name for d in client.users.list_access(pg.id, "alice")] == ["sales"], 30,
             what="hr revoked")
    assert "permission denied for database" in refused(pg, "alice", ALICE_1, "hr")

    # renamed: the password works under the new name only (a SCRAM verifier survives a rename)
    client.users.update_attributes(pg.id, "alice", newuserattr={"name": "alicia"})
    wait_for(lambda: "alicia" in users_listed(client, pg), 30, what="alice renamed")
    assert users_listed(client, pg)["alicia"] == ["sales"]
    with connect(pg, "alicia", ALICE_1, "sales") as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    assert "password authentication failed" in refused(pg, "alice", ALICE_1, "sales")

    # changed passwords: one through PUT /users, one through PUT /users/{user}
    client.users.change_passwords(pg.id, [{"name": "alicia", "password": ALICE_2}])
    client.users.update_attributes(pg.id, "bob", newuserattr={"password": BOB_2})
    wait_for(lambda: can_connect(pg, "alicia", ALICE_2, "sales") and can_connect(pg, "bob", BOB_2, "postgres"),
             30, what="the new passwords")
    assert "password authentication failed" in refused(pg, "alicia", ALICE_1, "sales")
    assert "password authentication failed" in refused(pg, "bob", BOB_1, "postgres")

    # a deleted database is gone; a deleted user too (what it owned stays, owned by postgres)
    client.databases.delete(pg.id, "hr")
    client.users.delete(pg.id, "alicia")
    wait_for(lambda: "hr" not in [d.name for d in client.databases.list(pg.id)]
             and "alicia" not in users_listed(client, pg), 30, what="hr and alicia deleted")
    with admin_connection(stack, pg) as admin:
        assert admin.execute("SELECT 1 FROM pg_database WHERE datname = 'hr'").fetchone() is None
        assert admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'alicia'").fetchone() is None
    assert "does not exist" in refused(pg, "bob", BOB_2, "hr")
    assert "password authentication failed" in refused(pg, "alicia", ALICE_2, "sales")


def test_root_enable_show_disable(stack, pg):
    client = trove(stack)
    assert client.root.is_instance_root_enabled(pg.id).rootEnabled is False
    with pytest.raises(trove_exc.NotFound):
        client.root.disable_instance_root(pg.id)  # never enabled

    name, password = client.root.create_instance_root(pg.id)
    SECRETS.append(password)
    assert name == "root" and len(password) >= 32
    assert client.root.is_instance_root_enabled(pg.id).rootEnabled is True
    # answered once it works: a superuser login, in every database
    with connect(pg, "root", password, "seeddb") as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (True,)
    session = connect(pg, "root", password, "postgres")
    session.execute("CREATE TABLE kept_by_root (id int)")

    client.root.disable_instance_root(pg.id)
    assert client.root.is_instance_root_enabled(pg.id).rootEnabled is False
    assert "password authentication failed" in refused(pg, "root", password, "postgres")
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")  # its open session ended too
    session.close()

    # enabled again with a password of the caller's choosing; what root made is still there
    name, password = client.root.create_instance_root(pg.id, root_password="Chosen-root-pass-1")
    assert (name, password) == ("root", "Chosen-root-pass-1")
    with connect(pg, "root", password, "postgres") as conn:
        conn.execute("SELECT count(*) FROM kept_by_root")
    client.root.disable_instance_root(pg.id)
    assert "password authentication failed" in refused(pg, "root", password, "postgres")


def test_openstack_cli_db_user_root(stack, pg):
    base = [str(Path(sys.executable).parent / "openstack"), "--os-auth-type", "admin_token",
            "--os-token", stack.member_token, "--os-endpoint", f"{stack.api_url}/v1.0/{stack.project}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}

    def cli(*args, output: bool = True):
        out = subprocess.run(base + list(args) + (["-f", "json"] if output else []), capture_output=True,
                             text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if output and out.stdout.strip() else None

    # each command is a process that pays OSC's start-up: the waits use troveclient
    client = trove(stack)
    cli("database", "db", "create", pg.id, "clidb", output=False)
    cli("database", "user", "create", pg.id, "cliuser", "Cli-pass-1", "--databases", "clidb", output=False)
    wait_for(lambda: "cliuser" in users_listed(client, pg), 30, what="cliuser listed")
    [shown] = [u for u in cli("database", "user", "list", pg.id) if u["Name"] == "cliuser"]
    assert shown["Host"] == "%" and "clidb" in shown["Databases"]
    with connect(pg, "cliuser", "Cli-pass-1", "clidb") as conn:
        conn.execute("CREATE TABLE t (x int)")

    root = cli("database", "root", "enable", pg.id)
    SECRETS.append(root["password"])
    assert root["name"] == "root"
    assert cli("database", "root", "show", pg.id)["is_root_enabled"] is True
    assert can_connect(pg, "root", root["password"], "clidb")
    cli("database", "root", "disable", pg.id, output=False)
    assert not can_connect(pg, "root", root["password"], "clidb")

    cli("database", "db", "delete", pg.id, "clidb", output=False)
    wait_for(lambda: "clidb" not in [d.name for d in client.databases.list(pg.id)], 30, what="clidb deleted")


def test_pagination_by_name(stack, pg):
    client = trove(stack)
    client.databases.create(pg.id, [{"name": f"page{i}"} for i in range(3)])
    wait_for(lambda: {"page0", "page1", "page2"} <= {d.name for d in client.databases.list(pg.id)}, 30,
             what="the page databases")
    first = client.databases.list(pg.id, limit=2)
    assert len(first) == 2 and first.next == first[-1].name
    names = [d.name for d in first]
    marker = first.next
    while marker:
        page = client.databases.list(pg.id, limit=2, marker=marker)
        names += [d.name for d in page]
        marker = page.next
    assert names == sorted(names) and len(names) == len(set(names)) and {"page0", "page2"} <= set(names)
    last = client.databases.list(pg.id, marker=names[-2])
    assert [d.name for d in last] == names[-1:] and last.next is None  # no next link on the last page

    users = client.users.list(pg.id, limit=1)
    assert users.next == f"{users[0].name}@%"  # users' markers are name@host
    rest = client.users.list(pg.id, marker=users.next)
    assert users[0].name not in [u.name for u in rest]


@pytest.fixture
def api(stack):
    base = f"{stack.api_url}/v1.0/{stack.project}"

    def call(method, path, **kw):
        return requests.request(method, base + path, headers={"X-Auth-Token": stack.member_token}, timeout=30,
                                **kw)
    return call


def fault(response, code: int) -> str:
    assert response.status_code == code, response.text
    [(name, body)] = response.json().items()
    assert body["code"] == code
    return body["message"]


def test_errors(stack, pg, api):
    i = f"/instances/{pg.id}"
    assert "already exists" in fault(api("POST", f"{i}/databases", json={"databases": [{"name": "seeddb"}]}), 400)
    assert "reserved" in fault(api("POST", f"{i}/databases", json={"databases": [{"name": "postgres"}]}), 400)
    assert "not valid" in fault(api("POST", f"{i}/databases", json={"databases": [{"name": "bad name"}]}), 400)
    assert "not valid" in fault(api("POST", f"{i}/databases", json={"databases": [{"name": "x" * 64}]}), 400)
    fault(api("POST", f"{i}/databases", json={"databases": []}), 400)
    fault(api("DELETE", f"{i}/databases/nosuchdb"), 404)
    fault(api("GET", f"{i}/databases/seeddb"), 501)

    assert "already exists" in fault(api("POST", f"{i}/users", json={"users": [
        {"name": "seed", "password": "x"}]}), 400)
    assert "host" in fault(api("POST", f"{i}/users", json={"users": [
        {"name": "h", "password": "x", "host": "10.0.0.1"}]}), 400)
    assert "needs a password" in fault(api("POST", f"{i}/users", json={"users": [{"name": "nopw"}]}), 400)
    assert "reserved" in fault(api("POST", f"{i}/users", json={"users": [
        {"name": "postgres", "password": "x"}]}), 400)
    assert "nosuchdb" in fault(api("POST", f"{i}/users", json={"users": [
        {"name": "u1", "password": "x", "databases": [{"name": "nosuchdb"}]}]}), 400)
    fault(api("GET", f"{i}/users/nobody"), 404)
    fault(api("DELETE", f"{i}/users/nobody"), 404)
    fault(api("PUT", f"{i}/users/nobody", json={"user": {"password": "x"}}), 404)
    fault(api("PUT", f"{i}/users", json={"users": [{"name": "nobody", "password": "x"}]}), 404)
    fault(api("GET", f"{i}/users/nobody/databases"), 404)
    assert "nosuchdb" in fault(api("PUT", f"{i}/users/seed/databases", json={"databases": [
        {"name": "nosuchdb"}]}), 404)
    fault(api("DELETE", f"{i}/users/seed/databases/postgres"), 404)  # not granted
    fault(api("PUT", f"{i}/users/seed", json={"user": {"flavor": 1}}), 400)
    fault(api("PUT", f"{i}/users/seed", json={"user": {}}), 400)
    # a user being created counts as existing, before its create has completed
    assert api("POST", f"{i}/users", json={"users": [{"name": "errx", "password": "Errx-pass-1"}]}).status_code == 202
    assert "already exists" in fault(api("PUT", f"{i}/users/seed", json={"user": {"name": "errx"}}), 400)
    assert "already exists" in fault(api("POST", f"{i}/users", json={"users": [
        {"name": "errx", "password": "x"}]}), 400)
    assert api("DELETE", f"{i}/users/errx").status_code == 202
    fault(api("GET", "/instances/no-such-instance/users"), 404)
    # policy: a reader reads, but changes nothing
    reader = {"X-Auth-Token": asyncio.run(_create_token(stack.project, "reader"))}
    base = f"{stack.api_url}/v1.0/{stack.project}{i}"
    assert requests.get(f"{base}/users", headers=reader, timeout=30).status_code == 200
    fault(requests.post(f"{base}/users", json={"users": [{"name": "r", "password": "x"}]}, headers=reader,
                        timeout=30), 403)
    fault(requests.post(f"{base}/root", headers=reader, timeout=30), 403)
    # nothing of the refused requests was made
    assert [d["name"] for d in api("GET", f"{i}/databases").json()["databases"]].count("seeddb") == 1
    assert "nopw" not in [u["name"] for u in api("GET", f"{i}/users").json()["users"]]


def test_no_password_in_logs_events_or_databases(stack, pg, service_databases):
    assert_secrets_nowhere(stack, service_databases, SECRETS, stack.home / "instances" / pg.id)
