"""Configuration groups, flavor resize and upgrade on each engine, with
python-troveclient against the whole stack, every value checked through the
engine's own client (psycopg, PyMySQL, redis-py) as the instance's user."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import psycopg
import pymysql
import pytest
import redis
from troveclient import exceptions as trove_exc

from tests.conftest import HUGE_FLAVOR, trove, wait_for
from tests.e2e.support import (agent_processes, installed_pg_version, postmasters, redis_admin, wait_active,
                               wait_gone, wait_status)

pytestmark = pytest.mark.e2e

USER, PASSWORD = "app", "S3cret-pass"


def read_postgresql(address: str, name: str) -> str:
    with psycopg.connect(host=address, user=USER, password=PASSWORD, dbname="appdb", connect_timeout=5) as conn:
        return conn.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,)).fetchone()[0]


def read_mariadb(address: str, name: str) -> str:
    with pymysql.connect(host=address, user=USER, password=PASSWORD, database="appdb", connect_timeout=5) as conn:
        with conn.cursor() as cur:
            cur.execute(f"SELECT @@GLOBAL.{name}")
            return str(cur.fetchone()[0])


def at_address(read: Callable[[str, str], str]) -> Callable[["Running", str], str]:
    return lambda inst, name: read(inst.address, name)


def read_redis(inst, name: str) -> str:
    # tenant users have no server administration (CONFIG): read as the agent's admin
    with redis_admin(inst.directory, inst.address) as client:
        return client.config_get(name)[name]


# -- the parameter rules against the engine itself: every parameter exists, is dynamic or
# restart-required as the rules say, and its type and bounds fit the engine's ---------------

def rules_refuted_by_postgresql(inst, rules: list) -> list[str]:
    with psycopg.connect(host=inst.address, user=USER, password=PASSWORD, dbname="appdb") as conn:
        rows = conn.execute("SELECT lower(name), vartype, context, unit, min_val, max_val, enumvals "
                            "FROM pg_settings").fetchall()
    engine = {r[0]: r[1:] for r in rows}
    kinds = {"boolean": {"bool"}, "integer": {"integer"}, "float": {"real"}, "string": {"string", "enum"}}
    wrong = []
    for p in rules:
        if p.name not in engine:
            wrong.append(f"{p.name}: not a PostgreSQL setting")
            continue
        vartype, context, unit, low, high, enumvals = engine[p.name]
        if context == "internal" or p.restart_required != (context == "postmaster"):
            wrong.append(f"{p.name}: context {context}, restart_required {p.restart_required}")
        if vartype not in kinds[p.type] or p.unit != unit:
            wrong.append(f"{p.name}: {vartype} in {unit}, rule {p.type} in {p.unit}")
        if p.min is not None and (float(p.min) < float(low) or float(p.max) > float(high)):
            wrong.append(f"{p.name}: {p.min}..{p.max} outside {low}..{high}")
        if set(p.allowed_values) - set(enumvals or []):
            wrong.append(f"{p.name}: allows {p.allowed_values}, PostgreSQL {enumvals}")
    return wrong


def rules_refuted_by_mariadb(inst, rules: list) -> list[str]:
    # the agent's admin account over the instance's socket: only it may SET GLOBAL
    with pymysql.connect(unix_socket=str(inst.directory / "run" / "mysqld.sock"), user="root") as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT LOWER(VARIABLE_NAME), VARIABLE_TYPE, NUMERIC_MIN_VALUE, "
                        "NUMERIC_MAX_VALUE, ENUM_VALUE_LIST FROM information_schema.SYSTEM_VARIABLES")
            engine = {r[0]: r[1:] for r in cur.fetchall()}
            cur.execute("SELECT LOWER(CHARACTER_SET_NAME) FROM information_schema.CHARACTER_SETS")
            charsets = {r[0] for r in cur.fetchall()}
            wrong = []
            for p in rules:
                if p.name not in engine:
                    wrong.append(f"{p.name}: not a MariaDB variable")
                    continue
                kind, low, high, enum = engine[p.name]
                # the server's own word on whether it changes while it runs (READ_ONLY is not all of it:
                # max_user_connections, for one, is fixed while it was 0 at start)
                try:
                    cur.execute(f"SET GLOBAL {p.name} = @@GLOBAL.{p.name}")
                    if p.restart_required:
                        wrong.append(f"{p.name}: SET GLOBAL works, yet restart_required")
                except pymysql.MySQLError as exc:
                    if not p.restart_required:
                        wrong.append(f"{p.name}: SET GLOBAL fails ({exc}), yet dynamic")
                fits = {"integer": "INT" in kind or (kind == "BOOLEAN" and (p.min, p.max) == (0, 1)),
                        "float": kind == "DOUBLE", "boolean": kind == "BOOLEAN",
                        "string": kind in ("ENUM", "VARCHAR", "SET")}[p.type]
                if not fits:
                    wrong.append(f"{p.name}: {kind}, rule {p.type}")
                if p.type in ("integer", "float") and low is not None and (
                        float(p.min) < float(low) or float(p.max) > float(high)):
                    wrong.append(f"{p.name}: {p.min}..{p.max} outside {low}..{high}")
                allowed = {v.lower() for v in p.allowed_values}
                if allowed - ({v.lower() for v in enum.split(",")} if enum else charsets):
                    wrong.append(f"{p.name}: allows {sorted(allowed)}, MariaDB {enum}")
    return wrong


def rules_refuted_by_redis(inst, rules: list) -> list[str]:
    wrong = []
    with redis_admin(inst.directory, inst.address, decode_responses=True) as client:
        for p in rules:
            current = client.config_get(p.name)
            if p.name not in current:
                wrong.append(f"{p.name}: not a Redis parameter")
                continue
            tries = [current[p.name]] + [str(bound) for bound in (p.min, p.max) if bound is not None]
            for value in tries:  # its current value, then the rules' bounds: Redis takes each
                try:
                    client.config_set(p.name, value)
                    if p.restart_required:
                        wrong.append(f"{p.name}: CONFIG SET works, yet restart_required")
                except redis.ResponseError as exc:
                    if not (p.restart_required and "immutable" in str(exc)):
                        wrong.append(f"{p.name} {value!r}: {exc}")
                    break
            if not p.restart_required:
                client.config_set(p.name, current[p.name])
            if p.type == "boolean" and current[p.name] not in ("yes", "no"):
                wrong.append(f"{p.name}: {current[p.name]!r} is not a boolean")
            if p.allowed_values and current[p.name] not in p.allowed_values:
                wrong.append(f"{p.name}: {current[p.name]!r} not among {p.allowed_values}")
    return wrong


@dataclass(frozen=True)
class Engine:
    datastore: str
    read: Callable[["Running", str], str]
    dynamic: tuple[str, object, str]   # parameter, value set, as the engine shows it
    restart: tuple[str, object, str]   # a parameter that needs a restart
    memory: tuple[str, str, str]       # the flavor-sized setting: name, on d1, on d2
    pid_file: str                      # the engine's, in the instance directory: a restart changes it
    refuted_rules: Callable[[object, list], list[str]]  # rules the engine contradicts
    databases: bool = True

    def __str__(self) -> str:
        return self.datastore


ENGINES = [
    Engine("postgresql", at_address(read_postgresql), ("statement_timeout", 12345, "12345"), ("max_connections", 123, "123"),
           ("shared_buffers", "16384", "32768"), "data/postmaster.pid",  # 8kB pages: 128MB, 256MB
           rules_refuted_by_postgresql),
    Engine("mariadb", at_address(read_mariadb), ("max_connections", 123, "123"), ("innodb_open_files", 444, "444"),
           ("innodb_buffer_pool_size", str(256 * 2 ** 20), str(512 * 2 ** 20)), "run/mariadbd.pid",
           rules_refuted_by_mariadb),
    Engine("redis", read_redis, ("maxclients", 123, "123"), ("databases", 32, "32"),
           ("maxmemory", str(384 * 2 ** 20), str(768 * 2 ** 20)), "run/redis.pid", rules_refuted_by_redis,
           databases=False),
]


# datastore -> another one and a parameter of its own
OTHER_DATASTORE = {"postgresql": ("redis", "maxclients"), "mariadb": ("mysql", "max_connections"),
                   "redis": ("postgresql", "max_connections")}


@dataclass
class Running:
    engine: Engine
    id: str
    address: str
    version: str
    directory: Path
    group: str = ""

    def engine_pid(self) -> str:
        return (self.directory / self.engine.pid_file).read_text().split()[0]


@pytest.fixture(scope="module", params=ENGINES, ids=str)
def inst(request, stack):
    engine: Engine = request.param
    client = trove(stack)
    version = client.datastore_versions.list(engine.datastore)[0].name
    extra = {"databases": [{"name": "appdb"}]} if engine.databases else {}
    created = client.instances.create(
        f"cfg-{engine.datastore}", "d1", volume={"size": 1}, datastore=engine.datastore, datastore_version=version,
        users=[{"name": USER, "password": PASSWORD, **({"databases": [{"name": "appdb"}]} if engine.databases
                                                       else {})}], **extra)
    active = wait_active(client, created.id)
    yield Running(engine, created.id, active.ip[0], version, stack.home / "instances" / created.id)
    client.instances.delete(created.id)
    wait_gone(client, created.id)


def effective_configuration(client, instance_id: str) -> dict:
    """GET /instances/{id}/configuration, once the instance is idle (422 while an
    action such as a configuration change runs)."""
    def idle():
        try:
            return client.instances.configuration(instance_id).configuration
        except trove_exc.UnprocessableEntity:
            return None
    return wait_for(idle, 30, what=f"{instance_id} idle")


def test_the_rules_are_the_engines_own(stack, inst):
    served = trove(stack).configuration_parameters.parameters(inst.engine.datastore, inst.version)
    rules = [SimpleNamespace(**{"min": None, "max": None, "unit": None, "allowed_values": [], **p.to_dict()})
             for p in served]
    assert len(rules) > 40
    assert inst.engine.refuted_rules(inst, rules) == []


def test_parameters_are_served_with_their_rules(stack, inst):
    client, (dynamic, _, _), (restart, _, _) = trove(stack), inst.engine.dynamic, inst.engine.restart
    listed = {p.name: p for p in client.configuration_parameters.parameters(inst.engine.datastore, inst.version)}
    assert listed[dynamic].restart_required is False and listed[restart].restart_required is True
    one = client.configuration_parameters.get_parameter(inst.engine.datastore, inst.version, restart.upper())
    assert (one.name, one.type) == (restart, "integer")
    by_id = client.configuration_parameters.get_parameter_by_version(one.datastore_version_id, dynamic)
    assert by_id.restart_required is False
    assert len(client.configuration_parameters.parameters_by_version(one.datastore_version_id)) == len(listed)
    with pytest.raises(trove_exc.NotFound):
        client.configuration_parameters.get_parameter(inst.engine.datastore, inst.version, "no_such_parameter")


@pytest.mark.parametrize("values, says", [
    ({"no_such_parameter": 1}, "no_such_parameter"),
    ({"{dynamic}": "many"}, "is not of type integer"),
    ({"{dynamic}": -5}, "less than the minimum"),
])
def test_bad_values_answer_422_naming_the_parameter(stack, inst, values, says):
    values = {k.format(dynamic=inst.engine.dynamic[0]): v for k, v in values.items()}
    with pytest.raises(trove_exc.UnprocessableEntity) as refused:
        trove(stack).configurations.create("bad", json.dumps(values), datastore=inst.engine.datastore,
                                           datastore_version=inst.version)
    assert says in str(refused.value) and next(iter(values)) in str(refused.value)


def test_a_dynamic_parameter_applies_without_a_restart(stack, inst):
    client = trove(stack)
    name, value, shown = inst.engine.dynamic
    group = client.configurations.create(f"live-{inst.engine.datastore}", json.dumps({name: value}),
                                         datastore=inst.engine.datastore, datastore_version=inst.version)
    inst.group = group.id
    assert group.instance_count == 0 and group.values == {name: value}
    pid = inst.engine_pid()

    client.instances.update(inst.id, configuration=group.id)
    effective = effective_configuration(client, inst.id)
    assert effective[name] == value  # as the engine reports it, in the parameter's type
    assert inst.engine.read(inst, name) == shown
    active = wait_active(client, inst.id)
    assert active.configuration == {"id": group.id, "name": group.name, "links": active.configuration["links"]}
    assert inst.engine_pid() == pid, "a dynamic parameter must not restart the engine"
    assert [i.id for i in client.configurations.instances(group.id)] == [inst.id]
    assert client.configurations.get(group.id).instance_count == 1


def test_attach_refusals(stack, inst):
    client = trove(stack)
    with pytest.raises(trove_exc.BadRequest) as attached:
        client.instances.update(inst.id, configuration=inst.group)
    assert "already has configuration group" in str(attached.value)
    with pytest.raises(trove_exc.NotFound):
        client.instances.update(inst.id, configuration="00000000-0000-0000-0000-000000000000")
    # a group of another datastore (mysql: the same server as mariadb, but another datastore version)
    other, parameter = OTHER_DATASTORE[inst.engine.datastore]
    foreign = client.configurations.create("foreign", json.dumps({parameter: 200}), datastore=other,
                                           datastore_version=client.datastore_versions.list(other)[0].name)
    client.instances.update(inst.id, remove_configuration=True)
    effective_configuration(client, inst.id)
    with pytest.raises(trove_exc.BadRequest) as mismatch:
        client.instances.update(inst.id, configuration=foreign.id)
    assert "another datastore version" in str(mismatch.value)
    client.configurations.delete(foreign.id)
    client.instances.update(inst.id, configuration=inst.group)
    assert effective_configuration(client, inst.id)[inst.engine.dynamic[0]] == inst.engine.dynamic[1]
    with pytest.raises(trove_exc.BadRequest) as in_use:
        client.configurations.delete(inst.group)
    assert inst.id in str(in_use.value)


def test_a_restart_required_parameter_waits_for_a_restart(stack, inst):
    client = trove(stack)
    name, value, shown = inst.engine.restart
    before = inst.engine.read(inst, name)
    client.configurations.edit(inst.group, json.dumps({name: value}))  # PATCH merges
    assert client.configurations.get(inst.group).values == {inst.engine.dynamic[0]: inst.engine.dynamic[1],
                                                            name: value}
    wait_status(client, inst.id, "RESTART_REQUIRED")
    assert inst.engine.read(inst, name) == before

    client.instances.restart(inst.id)
    wait_active(client, inst.id)
    assert inst.engine.read(inst, name) == shown
    assert inst.engine.read(inst, inst.engine.dynamic[0]) == inst.engine.dynamic[2]


def test_detach_puts_the_settings_back(stack, inst):
    client = trove(stack)
    dynamic, _, shown = inst.engine.dynamic
    client.instances.update(inst.id, remove_configuration=True)
    wait_for(lambda: inst.engine.read(inst, dynamic) != shown, 30, what=f"{dynamic} back")
    # the restart-required one goes back at the next restart
    assert not hasattr(wait_status(client, inst.id, "RESTART_REQUIRED"), "configuration")
    assert client.configurations.instances(inst.group) == []
    client.configurations.delete(inst.group)
    with pytest.raises(trove_exc.NotFound):
        client.configurations.get(inst.group)


def test_resize_to_a_bigger_flavor_gives_the_engine_more_memory(stack, inst):
    client = trove(stack)
    name, on_d1, on_d2 = inst.engine.memory
    assert inst.engine.read(inst, name) == on_d1
    client.instances.resize_instance(inst.id, "d2")
    assert client.instances.get(inst.id).status in ("RESIZE", "ACTIVE")
    resized = wait_for(lambda: (lambda i: i if i.status == "ACTIVE" and i.flavor["id"] == "d2" else None)(
        client.instances.get(inst.id)), 90, what="ACTIVE on d2")
    assert not hasattr(resized, "fault")
    assert inst.engine.read(inst, name) == on_d2
    # the restart applied what waited for one: the detached group's restart-required value is gone
    assert inst.engine.read(inst, inst.engine.restart[0]) != inst.engine.restart[2]


def test_resize_refusals_and_no_valid_host(stack, inst):
    client = trove(stack)
    for flavor in ("d2", "no-such-flavor"):
        with pytest.raises(trove_exc.BadRequest):
            client.instances.resize_instance(inst.id, flavor)

    admin = trove(stack, stack.admin_token)
    in_use = next(q for q in admin.quota.show(stack.project) if q.resource == "ram").in_use
    admin.quota.update(stack.project, {"ram": in_use})
    try:
        with pytest.raises(trove_exc.RequestEntityTooLarge):
            client.instances.resize_instance(inst.id, "d3")
    finally:
        admin.quota.update(stack.project, {"ram": -1})

    client.instances.resize_instance(inst.id, HUGE_FLAVOR)  # accepted; no host has 64 GB
    failed = wait_for(lambda: (lambda i: i if i.status == "ACTIVE" and hasattr(i, "fault") else None)(
        client.instances.get(inst.id)), 60, what="the resize to fail")
    assert failed.flavor["id"] == "d2" and "No valid host was found" in failed.fault["message"]
    assert inst.engine.read(inst, inst.engine.memory[0]) == inst.engine.memory[2]

    client.instances.restart(inst.id)
    with pytest.raises(trove_exc.UnprocessableEntity):
        client.instances.resize_instance(inst.id, "d1")  # while the restart runs
    wait_active(client, inst.id)


def test_upgrade_names_what_is_installed(stack, inst):
    client = trove(stack)
    with pytest.raises(trove_exc.BadRequest) as unknown:
        client.instances.upgrade(inst.id, "99.9")
    assert f"installed: {inst.version}" in str(unknown.value)
    with pytest.raises(trove_exc.BadRequest) as same:
        client.instances.upgrade(inst.id, inst.version)
    assert "the only installed version" in str(same.value)
    assert client.instances.get(inst.id).status == "ACTIVE"


# -- PostgreSQL: a group given at create, a fresh start clearing RESTART_REQUIRED, the CLI ------

@pytest.fixture(scope="module")
def pg_with_group(stack):
    client = trove(stack)
    version = installed_pg_version()
    group = client.configurations.create("at-create", json.dumps({"max_connections": 77, "work_mem": "8MB"}),
                                         datastore="postgresql", datastore_version=version)
    created = client.instances.create("cfg-at-create", "d1", volume={"size": 1}, datastore="postgresql",
                                      datastore_version=version, configuration=group.id,
                                      databases=[{"name": "appdb"}],
                                      users=[{"name": USER, "password": PASSWORD, "databases": [{"name": "appdb"}]}])
    assert created.configuration["id"] == group.id
    active = wait_active(client, created.id)
    yield active, group
    client.instances.delete(created.id)
    wait_gone(client, created.id)
    client.configurations.delete(group.id)


def test_a_group_given_at_create_is_there_from_the_first_start(stack, pg_with_group):
    active, group = pg_with_group
    assert active.status == "ACTIVE" and active.configuration["id"] == group.id
    # max_connections needs a restart: the engine started with it, so none is pending
    assert read_postgresql(active.ip[0], "max_connections") == "77"
    assert read_postgresql(active.ip[0], "work_mem") == "8192"  # kB


def test_an_engine_started_afresh_has_no_restart_pending(stack, pg_with_group):
    active, group = pg_with_group
    client = trove(stack)
    client.configurations.update(group.id, json.dumps({"max_connections": 88}))  # PUT replaces
    wait_status(client, active.id, "RESTART_REQUIRED")
    assert read_postgresql(active.ip[0], "work_mem") == "2048"  # no longer set: the flavor's 2MB again, live
    # a second change while one waits for a restart keeps it waiting
    client.configurations.edit(group.id, json.dumps({"work_mem": "16MB"}))
    assert effective_configuration(client, active.id)["work_mem"] == 16384
    assert client.instances.get(active.id).status == "RESTART_REQUIRED"

    # the agent stops (and stops its engine); the provisioner, restarted, launches it again
    instance_dir = stack.home / "instances" / active.id
    [agent] = agent_processes(instance_dir)
    os.kill(agent, signal.SIGTERM)
    wait_for(lambda: not postmasters(instance_dir), 30, what="the engine to stop")
    stack.procs["provisioner"].send_signal(signal.SIGTERM)
    stack.procs["provisioner"].wait(timeout=30)
    stack.start_service("provisioner")
    wait_active(client, active.id, timeout=90)
    assert read_postgresql(active.ip[0], "max_connections") == "88"


def test_openstack_cli_configuration_commands(stack, pg_with_group):
    active, _group = pg_with_group
    base = [str(Path(sys.executable).parent / "openstack"), "--os-auth-type", "admin_token",
            "--os-token", stack.member_token, "--os-endpoint", f"{stack.api_url}/v1.0/{stack.project}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}

    def cli(*args, output=True):
        out = subprocess.run(base + list(args) + (["-f", "json"] if output else []), capture_output=True,
                             text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if output else None

    version = installed_pg_version()
    parameters = {p["Name"]: p for p in cli("database", "configuration", "parameter", "list", version,
                                           "--datastore", "postgresql")}
    assert parameters["max_connections"]["Restart Required"] is True
    created = cli("database", "configuration", "create", "cli-group", '{"statement_timeout": 2500}',
                  "--datastore", "postgresql", "--datastore-version", version)
    shown = cli("database", "configuration", "show", "cli-group")  # by name: found through the list
    assert shown["id"] == created["id"] and json.loads(shown["values"]) == {"statement_timeout": 2500}
    cli("database", "configuration", "delete", created["id"], output=False)
    assert created["id"] not in {c.id for c in trove(stack).configurations.list()}
    assert cli("database", "configuration", "default", active.id)["max_connections"] == 88
