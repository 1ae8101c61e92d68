"""Guest logs end to end through the bus, per engine, with python-troveclient and
the `openstack database log` commands: the slow query log switched on (checked with
the engine's own client), a slow statement run through that client, the log published
to the object store (a local directory here) where the statement is found, discarded
(the objects are gone) and switched off again (the engine's setting is off)."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pymysql
import pytest
import redis
from troveclient import exceptions as trove_exc

from plumbing.objectstore import LocalDirectoryStore
from tests.conftest import trove, wait_for
from tests.e2e.support import installed_pg_version, wait_active, wait_gone
from tests.e2e.test_mariadb_instances import installed_mariadb_version
from tests.e2e.test_redis_instances import NO_RETRY, redis_version

pytestmark = pytest.mark.e2e

PASSWORD = "Logs-pass-1"
CONTAINER = "database_logs"
SLOW_SECONDS = 1.3  # past the default threshold, COFFER_GUEST_LOG_LONG_QUERY_MS = 1000
# a Lua loop that keeps Redis busy for SLOW_SECONDS (DEBUG SLEEP is off for every connection)
BUSY_SCRIPT = ("local t = redis.call('TIME') local start = t[1] * 1e6 + t[2] "
               "repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - start > tonumber(ARGV[1]) return 1")


@pytest.fixture(scope="module")
def instances(stack):
    client = trove(stack)
    user = [{"name": "app", "password": PASSWORD, "databases": [{"name": "appdb"}]}]
    made = {
        "postgresql": client.instances.create("logs-pg", "d1", volume={"size": 1}, datastore="postgresql",
                                              datastore_version=installed_pg_version(),
                                              databases=[{"name": "appdb"}], users=user),
        "mariadb": client.instances.create("logs-my", "d1", volume={"size": 1}, datastore="mariadb",
                                           datastore_version=installed_mariadb_version(),
                                           databases=[{"name": "appdb"}], users=user),
        "redis": client.instances.create("logs-rd", "d1", volume={"size": 1}, datastore="redis",
                                         datastore_version=redis_version(client),
                                         users=[{"name": "app", "password": PASSWORD}]),
    }
    yield {engine: wait_active(client, inst.id, timeout=120) for engine, inst in made.items()}
    for inst in made.values():
        client.instances.delete(inst.id)
    for inst in made.values():
        wait_gone(client, inst.id)


# -- each engine's own client ---------------------------------------------------------
def run_slow_statement(stack, engine: str, inst) -> str:
    """Run a statement slower than the threshold; the text the slow log should show."""
    if engine == "postgresql":
        with psycopg.connect(host=inst.ip[0], port=5432, user="app", password=PASSWORD, dbname="appdb") as conn:
            conn.execute(f"SELECT pg_sleep({SLOW_SECONDS}) AS coffer_slow_marker")
        return "coffer_slow_marker"
    if engine == "mariadb":
        conn = pymysql.connect(host=inst.ip[0], port=3306, user="app", password=PASSWORD, database="appdb")
        with conn.cursor() as cur:
            cur.execute(f"SELECT SLEEP({SLOW_SECONDS}) AS coffer_slow_marker")
        conn.close()
        return "coffer_slow_marker"
    conn = redis.Redis(host=inst.ip[0], port=6379, username="app", password=PASSWORD, retry=NO_RETRY)
    conn.eval(BUSY_SCRIPT, 0, str(int(SLOW_SECONDS * 1e6)))
    conn.close()
    return "redis.call('TIME')"


def slow_log_setting(stack, engine: str, inst) -> str:
    """The engine's own word on its slow query log, asked through its client."""
    if engine == "postgresql":
        with psycopg.connect(host=inst.ip[0], port=5432, user="app", password=PASSWORD, dbname="appdb") as conn:
            return conn.execute("SHOW log_min_duration_statement").fetchone()[0]
    if engine == "mariadb":
        conn = pymysql.connect(host=inst.ip[0], port=3306, user="app", password=PASSWORD)
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL VARIABLES LIKE 'slow_query_log'")
            value = cur.fetchone()[1]
        conn.close()
        return value
    # CONFIG is an administrative command no tenant account may run: ask as the agent does
    directory = stack.home / "instances" / inst.id
    conn = redis.Redis(unix_socket_path=str(directory / "run" / "redis.sock"), username="coffer.admin",
                       password=(directory / "admin.password").read_text().strip(), retry=NO_RETRY)
    value = conn.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    conn.close()
    return value


SETTING_ON = {"postgresql": "1s", "mariadb": "ON", "redis": "1000000"}
SETTING_OFF = {"postgresql": "-1", "mariadb": "OFF", "redis": "-1"}


# -- the object store -------------------------------------------------------------------
def published_objects(stack, prefix: str) -> dict[str, bytes]:
    store = LocalDirectoryStore(stack.home / "objects")

    async def read():
        found = {}
        for info in await store.list(CONTAINER, prefix):
            found[info.name] = b"".join([chunk async for chunk in store.get(CONTAINER, info.name)])
        return found
    return asyncio.run(read())


def metafile(stack, name: str) -> dict | None:
    path = stack.home / "objects" / CONTAINER / name
    return json.loads(path.read_text()) if path.exists() else None


# -- the tests ----------------------------------------------------------------------------
EXPECTED = {"postgresql": {"general": "USER", "slow_query": "USER", "error": "SYS"},
            "mariadb": {"general": "USER", "slow_query": "USER", "error": "SYS"},
            "redis": {"slow_query": "USER", "error": "SYS"}}


@pytest.mark.parametrize("engine", ["postgresql", "mariadb", "redis"])
def test_slow_query_log_enable_publish_discard_disable(stack, instances, engine):
    client, inst = trove(stack), instances[engine]
    listed = {log.name: log for log in client.instances.log_list(inst.id)}
    assert {name: log.type for name, log in listed.items()} == EXPECTED[engine]
    assert listed["error"].status in ("Ready", "Enabled", "Unavailable")

    enabled = client.instances.log_action(inst.id, "slow_query", enable=True)
    assert enabled.name == "slow_query" and enabled.status in ("Enabled", "Ready")
    assert slow_log_setting(stack, engine, inst) == SETTING_ON[engine]

    marker = run_slow_statement(stack, engine, inst)
    published = client.instances.log_action(inst.id, "slow_query", publish=True)
    assert published.status == "Published" and published.published > 0 and published.pending == 0
    assert published.container == CONTAINER
    assert published.prefix == f"{inst.id}/{engine}-slow_query/"
    assert published.metafile == f"{inst.id}/{engine}-slow_query_metafile"
    objects = published_objects(stack, published.prefix)
    assert objects and all(name.rsplit("/", 1)[1].startswith("log-") for name in objects)
    assert marker in b"".join(objects.values()).decode()
    assert metafile(stack, published.metafile)["log_size"] == published.published == sum(map(len, objects.values()))
    assert client.instances.log_show(inst.id, "slow_query").status == "Published"

    discarded = client.instances.log_action(inst.id, "slow_query", discard=True)
    assert discarded.published == 0 and discarded.container == "None" and discarded.pending > 0
    assert published_objects(stack, published.prefix) == {} and metafile(stack, published.metafile) is None

    disabled = client.instances.log_action(inst.id, "slow_query", disable=True)
    assert disabled.status == "Disabled"
    assert slow_log_setting(stack, engine, inst) == SETTING_OFF[engine]
    assert client.instances.get(inst.id).status == "ACTIVE"


def test_refusals_as_trove(stack, instances):
    client, inst = trove(stack), instances["redis"]
    with pytest.raises(trove_exc.NotFound):
        client.instances.log_show(inst.id, "general")  # Redis has no general log
    with pytest.raises(trove_exc.BadRequest):
        client.instances.log_action(inst.id, "slow_query", enable=True, disable=True)
    with pytest.raises(trove_exc.BadRequest):
        client.instances.log_action(inst.id, "error", enable=True)  # a SYS log is always on
    with pytest.raises(trove_exc.NotFound):
        client.instances.log_list("no-such-instance")
    assert client.instances.get(inst.id).status == "ACTIVE"


def test_error_log_published_and_setting_kept_across_restart(stack, instances):
    """The general log switched on stays on after a restart (it is in the engine's files)."""
    client, inst = trove(stack), instances["mariadb"]
    client.instances.log_action(inst.id, "general", enable=True)
    client.instances.restart(inst.id)
    wait_for(lambda: client.instances.get(inst.id).status == "ACTIVE", 120, interval=0.5, what="restarted")
    conn = pymysql.connect(host=inst.ip[0], port=3306, user="app", password=PASSWORD)
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL VARIABLES LIKE 'general_log'")
        assert cur.fetchone()[1] == "ON"
        cur.execute("SELECT 'coffer_general_marker'")
    conn.close()
    published = client.instances.log_action(inst.id, "general", publish=True)
    assert b"coffer_general_marker" in b"".join(published_objects(stack, published.prefix).values())
    error = client.instances.log_action(inst.id, "error", publish=True)
    assert error.type == "SYS" and error.published > 0
    client.instances.log_action(inst.id, "general", disable=True)


def test_openstack_cli_log_commands(stack, instances):
    inst = instances["postgresql"]
    base = [str(Path(sys.executable).parent / "openstack"), "--os-auth-type", "admin_token",
            "--os-token", stack.member_token, "--os-endpoint", f"{stack.api_url}/v1.0/{stack.project}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}

    def cli(*args):
        out = subprocess.run(base + list(args) + ["-f", "json"], capture_output=True, text=True, env=env,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else None

    listed = {row["Name"]: row for row in cli("database", "log", "list", inst.id)}
    assert listed["general"]["Type"] == "USER" and listed["general"]["Status"] == "Disabled"
    cli("database", "log", "set", inst.id, "general", "--enable")
    with psycopg.connect(host=inst.ip[0], port=5432, user="app", password=PASSWORD, dbname="appdb") as conn:
        assert conn.execute("SHOW log_statement").fetchone()[0] == "all"
        conn.execute("SELECT 'coffer_cli_marker'")
    cli("database", "log", "set", inst.id, "general", "--publish")
    shown = cli("database", "log", "show", inst.id, "general")
    assert shown["status"] == "Published" and shown["published"] > 0
    assert b"coffer_cli_marker" in b"".join(published_objects(stack, shown["prefix"]).values())
    cli("database", "log", "set", inst.id, "general", "--discard", "--disable")
    shown = cli("database", "log", "show", inst.id, "general")
    assert shown["status"] == "Disabled" and shown["published"] == 0
