"""Users and root on a Redis instance, end to end through the bus with
python-troveclient, checked with a real Redis client (redis-py): ACL users that
cannot administer the server, root as the default user (AUTH <password>), and
Trove's 422 for databases, which Redis does not have."""
from __future__ import annotations

import os
import signal

import pytest
import redis
from troveclient import exceptions as trove_exc

from tests.conftest import trove, wait_for
from tests.e2e.support import assert_secrets_nowhere, wait_active, wait_gone
from tests.e2e.test_redis_instances import NO_RETRY, redis_servers, redis_version

pytestmark = pytest.mark.e2e

SEED, ALICE, BOB_1, BOB_2, CAROL = "Seed-pass-1", "Alice-pass-1", "Bob-pass-1", "Bob-pass-2", "Carol-pass-1"
SECRETS = [SEED, ALICE, BOB_1, BOB_2, CAROL, "Chosen-root-pass-1"]  # + root's generated
# what no tenant account may run: the server's administration, and the agent's own admin user
ADMIN_COMMANDS = [("CONFIG", "GET", "maxmemory"), ("ACL", "LIST"), ("ACL", "SETUSER", "x", "on"),
                  ("ACL", "DELUSER", "coffer.admin"), ("SHUTDOWN", "NOSAVE"), ("DEBUG", "SLEEP", "0"),
                  ("MODULE", "LIST"), ("REPLICAOF", "127.0.0.1", "1"), ("SLAVEOF", "127.0.0.1", "1"),
                  ("FAILOVER",), ("MONITOR",), ("CLIENT", "LIST"), ("SAVE",), ("BGREWRITEAOF",),
                  ("MIGRATE", "127.0.0.1", "1", "k", "0", "1000")]


@pytest.fixture(scope="module")
def rd(stack):
    client = trove(stack)
    inst = client.instances.create("accounts-redis", "d1", volume={"size": 1}, datastore="redis",
                                   datastore_version=redis_version(client),
                                   users=[{"name": "seed", "password": SEED}])
    yield wait_active(client, inst.id)
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)


def login(rd, username: str | None, password: str) -> redis.Redis:
    conn = redis.Redis(host=rd.ip[0], port=6379, username=username, password=password, socket_timeout=5,
                       socket_connect_timeout=5, retry=NO_RETRY)
    conn.ping()
    return conn


def refused(rd, username: str | None, password: str) -> None:
    with pytest.raises(redis.exceptions.AuthenticationError):
        login(rd, username, password)


def can_login(rd, username: str | None, password: str) -> bool:
    try:
        login(rd, username, password).close()
        return True
    except redis.exceptions.AuthenticationError:
        return False


def assert_no_administration(conn: redis.Redis) -> None:
    for command in ADMIN_COMMANDS:
        with pytest.raises(redis.exceptions.ResponseError) as refusal:
            conn.execute_command(*command)
        # the ACL refuses it; DEBUG and MODULE are also off for every connection (Redis 7's default)
        assert isinstance(refusal.value, redis.exceptions.NoPermissionError) or (
            command[0] in ("DEBUG", "MODULE") and "command not allowed" in str(refusal.value)), (command, refusal)


def users_listed(client, rd) -> dict:
    return {u.name: (u.host, u.databases) for u in client.users.list(rd.id)}


def test_databases_are_not_applicable(stack, rd):
    client = trove(stack)
    for call in (lambda: client.databases.list(rd.id), lambda: client.databases.create(rd.id, [{"name": "d"}]),
                 lambda: client.databases.delete(rd.id, "d"), lambda: client.users.list_access(rd.id, "seed"),
                 lambda: client.users.grant(rd.id, "seed", ["d"])):
        with pytest.raises(trove_exc.UnprocessableEntity) as refusal:
            call()
        assert "not supported for datastore redis" in str(refusal.value)


def test_acl_users(stack, rd):
    client = trove(stack)
    assert users_listed(client, rd) == {"seed": ("%", [])}
    client.users.create(rd.id, [{"name": "alice", "password": ALICE}, {"name": "bob", "password": BOB_1}])
    wait_for(lambda: set(users_listed(client, rd)) == {"seed", "alice", "bob"}, 30, what="alice and bob listed")

    alice = login(rd, "alice", ALICE)
    assert alice.set("greeting", "hello") and alice.get("greeting") == b"hello"
    assert alice.acl_whoami() == "alice"
    assert alice.keys("*") == [b"greeting"] and alice.info("server")["redis_version"]
    assert_no_administration(alice)
    assert_no_administration(login(rd, "seed", SEED))  # a user made at create is no different
    alice.close()

    # renamed: the password works under the new name only
    client.users.update_attributes(rd.id, "alice", newuserattr={"name": "alicia"})
    wait_for(lambda: "alicia" in users_listed(client, rd), 30, what="alice renamed")
    assert login(rd, "alicia", ALICE).get("greeting") == b"hello"
    refused(rd, "alice", ALICE)

    client.users.change_passwords(rd.id, [{"name": "bob", "password": BOB_2}])
    wait_for(lambda: can_login(rd, "bob", BOB_2), 30, what="bob's new password")
    refused(rd, "bob", BOB_1)

    bob = login(rd, "bob", BOB_2)
    client.users.delete(rd.id, "bob")
    wait_for(lambda: "bob" not in users_listed(client, rd), 30, what="bob deleted")
    refused(rd, "bob", BOB_2)
    with pytest.raises(redis.exceptions.ConnectionError):
        bob.ping()  # his open connection was closed with him


def test_root_is_the_default_user(stack, rd):
    client = trove(stack)
    assert client.root.is_instance_root_enabled(rd.id).rootEnabled is False
    with pytest.raises(trove_exc.NotFound):
        client.root.disable_instance_root(rd.id)
    refused(rd, None, "anything")  # users exist: the default user is off

    name, password = client.root.create_instance_root(rd.id)
    SECRETS.append(password)
    assert name == "default" and len(password) >= 32
    root = login(rd, None, password)  # AUTH <password>, as with requirepass
    assert root.acl_whoami() == "default"
    assert root.set("by-root", "1")
    assert_no_administration(root)
    assert login(rd, "default", password).get("by-root") == b"1"

    # creating a user leaves root as it is
    client.users.create(rd.id, [{"name": "carol", "password": CAROL}])
    wait_for(lambda: "carol" in users_listed(client, rd), 30, what="carol listed")
    assert can_login(rd, None, password) and can_login(rd, "carol", CAROL)

    client.root.disable_instance_root(rd.id)
    assert client.root.is_instance_root_enabled(rd.id).rootEnabled is False
    refused(rd, None, password)
    with pytest.raises(redis.exceptions.ConnectionError):
        root.ping()  # its open connection was closed
    with pytest.raises(redis.exceptions.RedisError):
        redis.Redis(host=rd.ip[0], port=6379, socket_timeout=5, retry=NO_RETRY).get("by-root")  # not open either

    name, password = client.root.create_instance_root(rd.id, root_password="Chosen-root-pass-1")
    assert (name, password) == ("default", "Chosen-root-pass-1")
    assert login(rd, None, password).get("by-root") == b"1"
    client.root.disable_instance_root(rd.id)
    refused(rd, None, password)


def test_root_enable_fails_clearly_when_the_engine_is_gone(stack, rd):
    client = trove(stack)
    instance_dir = stack.home / "instances" / rd.id
    [server] = redis_servers(instance_dir)
    os.kill(server, signal.SIGKILL)
    wait_for(lambda: not redis_servers(instance_dir), 10, what="redis-server to end")
    with pytest.raises(trove_exc.BadRequest) as refusal:  # Trove's answer for a guest error
        client.root.create_instance_root(rd.id)
    assert "Enabling root failed" in str(refusal.value)
    shown = client.instances.get(rd.id)  # the agent found its engine down: ERROR, with what failed
    assert shown.status == "ERROR" and "enable_root failed" in shown.fault["message"]
    client.instances.restart(rd.id)
    wait_active(client, rd.id)
    assert client.root.is_instance_root_enabled(rd.id).rootEnabled is False
    assert can_login(rd, "carol", CAROL)


def test_422_while_the_engine_does_not_run_and_404s(stack, rd):
    member, admin = trove(stack), trove(stack, stack.admin_token)
    with pytest.raises(trove_exc.NotFound):
        member.users.get(rd.id, "nobody")
    with pytest.raises(trove_exc.BadRequest):
        member.users.create(rd.id, [{"name": "h", "password": "x", "host": "10.0.0.1"}])  # no hosts in Redis
    admin.instances.reset_status(rd.id)  # ERROR: no guest action possible
    for call in (lambda: member.users.list(rd.id), lambda: member.users.create(rd.id, [{"name": "late",
                                                                                       "password": "x"}]),
                 lambda: member.root.create_instance_root(rd.id), lambda: member.root.is_instance_root_enabled(rd.id)):
        with pytest.raises(trove_exc.UnprocessableEntity) as refusal:
            call()
        assert "not ready" in str(refusal.value)
    member.instances.restart(rd.id)
    wait_active(member, rd.id)
    assert "late" not in users_listed(member, rd)


def test_no_password_in_logs_events_or_databases(stack, rd, service_databases):
    assert_secrets_nowhere(stack, service_databases, SECRETS, stack.home / "instances" / rd.id)
