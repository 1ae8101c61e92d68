"""The Trove clients, unchanged, against Coffer: every command of reference §7.3
with the real `openstack` CLI (python-troveclient's plugin), once with a built-in
token (--os-auth-type admin_token, the endpoint given) and once through a real
Keystone's catalog (password login, the endpoint found under service type
`database`). What each command prints is checked: the tables and JSON fields, the
"accepted" lines, and for what Coffer does not do, the error text and exit status.

Per mode: one PostgreSQL primary (made with databases, a user and a configuration
group), one replica of it, one instance restored from its backups. The commands run
in two interactive `openstack` sessions (member and admin, tests/e2e/osc_session.py);
python-troveclient waits between their batches. The fixtures go by area, in the
order a person would work, each deleting what it made."""
from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field

import psycopg
import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from keystoneauth1.token_endpoint import Token
from troveclient import exceptions as trove_exc
from troveclient.v1 import client as trove_client

from tests.conftest import RUN_ID, wait_for
from tests.e2e.osc_session import Printed, Session, one_shot
from tests.e2e.support import installed_pg_version, wait_active, wait_gone

pytestmark = pytest.mark.e2e
APP_PASSWORD, ALICE_PASSWORD, ALICE_NEW_PASSWORD = "S3cret-pass", "Alice-pass-1", "Alice-pass-2"


@dataclass
class Mode:
    """How each role of one mode reaches the API: `openstack` arguments and
    environment, and a python-troveclient for the waits."""
    name: str
    project: str
    logins: dict[str, tuple[list[str], dict]]
    clients: dict[str, trove_client.Client]
    sessions: dict[str, Session] = field(default_factory=dict)

    @property
    def member(self) -> trove_client.Client:
        return self.clients["member"]

    @property
    def admin(self) -> trove_client.Client:
        return self.clients["admin"]

    def osc(self, role: str, commands: dict[str, list[str]]) -> dict[str, Printed]:
        """What each command printed, typed in `role`'s interactive session, by label."""
        if role not in self.sessions:
            self.sessions[role] = Session(*self.logins[role])
        printed = dict(zip(commands, self.sessions[role].run(*commands.values())))
        for each in printed.values():  # a transcript, shown when a test fails
            print(f"$ {each.command}\n{each.out}{each.err}")
        return printed

    def one_shot(self, commands: dict[str, tuple[str, list[str]]]) -> dict[str, Printed]:
        """Each (role, command) as an `openstack` process of its own, with its exit status."""
        printed = dict(zip(commands, one_shot(*((*self.logins[role], command) for role, command in commands.values()))))
        for each in printed.values():
            print(f"$ {each.command}  (exit status {each.status})\n{each.out}{each.err}")
        return printed

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()


def builtin_mode(stack) -> Mode:
    from coffer.cli import _create_token
    # a UUID-like project id: `quota show/update` look any other up in Keystone
    project = uuid.uuid4().hex
    url = f"{stack.api_url}/v1.0/{project}"
    logins, clients = {}, {}
    for role in ("admin", "member"):
        token = asyncio.run(_create_token(project, role))
        logins[role] = (["--os-auth-type", "admin_token", "--os-token", token, "--os-endpoint", url], {})
        clients[role] = trove_client.Client(session=ks_session.Session(auth=Token(url, token)))
    return Mode("admin_token", project, logins, clients)


def keystone_mode(keystone) -> Mode:
    logins, clients = {}, {}
    for role in ("admin", "member"):
        user, password = f"{role}-{RUN_ID}", f"{role}-secret"
        logins[role] = ([], {
            "OS_AUTH_URL": keystone.url, "OS_USERNAME": user, "OS_PASSWORD": password,
            "OS_PROJECT_ID": keystone.tenant, "OS_USER_DOMAIN_ID": "default", "OS_PROJECT_DOMAIN_ID": "default",
            "OS_IDENTITY_API_VERSION": "3", "OS_INTERFACE": "public"})
        clients[role] = trove_client.Client(session=ks_session.Session(auth=v3.Password(
            auth_url=keystone.url, username=user, password=password, project_id=keystone.tenant,
            user_domain_id="default", project_domain_id="default")))
    return Mode("keystone catalog", keystone.tenant, logins, clients)


def osc(*words: str) -> list[str]:
    return ["database", *words]


def as_json(*words: str) -> list[str]:
    return ["database", *words, "-f", "json"]


def quietly_delete_instance(client, instance_id: str) -> None:
    try:
        client.instances.delete(instance_id)
    except trove_exc.NotFound:
        return  # a test deleted it
    wait_gone(client, instance_id, timeout=60)


def settled(client, instance_id: str, check=lambda inst: True, timeout: float = 60):
    """The instance once it is ACTIVE/HEALTHY with no task running and `check` holds."""
    def ready():
        inst = client.instances.get(instance_id)
        assert inst.status != "ERROR", getattr(inst, "fault", None)
        return inst if inst.status == "ACTIVE" and inst.operating_status == "HEALTHY" and check(inst) else None
    return wait_for(ready, timeout, interval=0.2, what=f"{instance_id} settled")


def configured(client, instance_id: str, group_id: str | None) -> None:
    """Once `group_id` (None: no group) is the instance's and the agent has applied
    it: its effective configuration is shown only when no action runs (422 before)."""
    def applied():
        inst = client.instances.get(instance_id)
        if getattr(inst, "configuration", {}).get("id") != group_id:
            return False
        try:
            return client.instances.configuration(instance_id) is not None
        except trove_exc.UnprocessableEntity:
            return False
    wait_for(applied, 60, interval=0.2, what=f"{instance_id}'s configuration applied")


def wait_backup(client, backup_id: str):
    def ended():
        backup = client.backups.get(backup_id)
        return backup if backup.status in ("COMPLETED", "FAILED") else None
    done = wait_for(ended, 120, interval=0.2, what=f"backup {backup_id} to end")
    assert done.status == "COMPLETED", getattr(done, "fail_reason", None)
    return done


def connect(inst, user: str, password: str, dbname: str) -> psycopg.Connection:
    return psycopg.connect(host=inst.ip[0], user=user, password=password, dbname=dbname, connect_timeout=5,
                           autocommit=True)


def logs_in(inst, user: str, password: str) -> bool:
    try:
        connect(inst, user, password, "appdb").close()
        return True
    except psycopg.OperationalError:
        return False


@dataclass
class Made:
    """What a fixture made (an instance with its group, a backup), and what the commands printed on the way."""
    id: str
    printed: dict[str, Printed]
    group_id: str = ""


# -- fixtures, by area ---------------------------------------------------------------

@pytest.fixture(scope="module", params=["admin_token", "keystone"])
def mode(request, stack):
    if request.param == "keystone":
        request.getfixturevalue("keystone_api")
        made = keystone_mode(request.getfixturevalue("keystone"))
    else:
        made = builtin_mode(stack)
    yield made
    made.close()


@pytest.fixture(scope="module")
def catalog(mode) -> dict[str, Printed]:
    version = installed_pg_version()
    version_id = mode.member.datastore_versions.get("postgresql", version).id
    return mode.osc("member", {
        "flavor list": as_json("flavor", "list"),
        "flavor list of a version": as_json("flavor", "list", "--datastore-type", "postgresql",
                                            "--datastore-version-id", version_id),
        "datastore list": ["datastore", "list", "-f", "json"],
        "datastore show": ["datastore", "show", "postgresql", "-f", "json"],
        "datastore version list": ["datastore", "version", "list", "postgresql", "-f", "json"],
        "datastore version show": ["datastore", "version", "show", version, "--datastore", "postgresql", "-f", "json"],
        "parameter list": as_json("configuration", "parameter", "list", version, "--datastore", "postgresql"),
        "parameter show": as_json("configuration", "parameter", "show", version, "max_connections",
                                  "--datastore", "postgresql"),
        "limit list": osc("limit", "list"),
    })


@pytest.fixture(scope="module")
def primary(mode):
    """A configuration group, then the primary made with it and with a database and a user."""
    version = installed_pg_version()
    printed = mode.osc("member", {"configuration create": as_json(
        "configuration", "create", "compat-group", '{"statement_timeout": 2500}', "--datastore", "postgresql",
        "--datastore-version", version, "--description", "made by the compatibility suite")})
    group_id = printed["configuration create"].json()["id"]
    try:
        printed |= mode.osc("member", {"instance create": as_json(
            "instance", "create", "compat-pg", "--flavor", "d1", "--size", "1", "--datastore", "postgresql",
            "--datastore-version", version, "--databases", "appdb", "--users", f"app:{APP_PASSWORD}",
            "--configuration", group_id)})
        instance_id = printed["instance create"].json()["id"]
        try:
            printed["status once built"] = wait_active(mode.member, instance_id, timeout=90).status
            printed |= mode.osc("member", {
                "instance list": as_json("instance", "list"),
                "instance show by name": as_json("instance", "show", "compat-pg"),
                "configuration list": as_json("configuration", "list"),
                "configuration show by name": as_json("configuration", "show", "compat-group"),
                "quota show": as_json("quota", "show", mode.project),
            })
            yield Made(instance_id, printed, group_id)
        finally:
            quietly_delete_instance(mode.member, instance_id)
    finally:
        try:
            mode.member.configurations.delete(group_id)
        except trove_exc.NotFound:
            pass  # the configuration test deleted it


@pytest.fixture(scope="module")
def accounts(mode, primary) -> dict[str, Printed]:
    """Databases, users and root on the primary; each batch waits for the agent to apply the last."""
    client, pid = mode.member, primary.id

    def databases():
        return {d.name for d in client.databases.list(pid)}

    def access(user: str):
        return {d.name for d in client.users.list_access(pid, user)}
    printed = mode.osc("member", {
        "db create": osc("db", "create", pid, "salesdb"),
        "root enable": as_json("root", "enable", pid),
        "root show": as_json("root", "show", pid),
        "root disable": osc("root", "disable", pid),
        "root show after disable": as_json("root", "show", pid),
    })
    wait_for(lambda: "salesdb" in databases(), 30, what="salesdb listed")
    printed |= mode.osc("member", {
        "db list": as_json("db", "list", pid),
        "user create": osc("user", "create", pid, "alice", ALICE_PASSWORD, "--databases", "salesdb"),
    })
    wait_for(lambda: "alice" in {u.name for u in client.users.list(pid)}, 30, what="alice listed")
    printed |= mode.osc("member", {
        "user list": as_json("user", "list", pid),
        "user show": as_json("user", "show", pid, "alice"),
        "user grant access": osc("user", "grant", "access", pid, "alice", "appdb"),
        "user update attributes": osc("user", "update", "attributes", pid, "alice",
                                      "--new_password", ALICE_NEW_PASSWORD),
    })
    wait_for(lambda: access("alice") == {"salesdb", "appdb"}, 30, what="alice granted appdb")
    inst = client.instances.get(pid)
    printed["alice logs in with the new password"] = wait_for(lambda: logs_in(inst, "alice", ALICE_NEW_PASSWORD),
                                                              30, what="alice's new password")
    printed |= mode.osc("member", {
        "user show access": as_json("user", "show", "access", pid, "alice"),
        "user revoke access": osc("user", "revoke", "access", pid, "alice", "salesdb"),
    })
    wait_for(lambda: access("alice") == {"appdb"}, 30, what="alice's access to salesdb revoked")
    printed |= mode.osc("member", {
        "user show access after revoke": as_json("user", "show", "access", pid, "alice"),
        "user delete": osc("user", "delete", pid, "alice"),
        "db delete": osc("db", "delete", pid, "salesdb"),
    })
    wait_for(lambda: "salesdb" not in databases() and "alice" not in {u.name for u in client.users.list(pid)},
             30, what="alice and salesdb deleted")
    printed |= mode.osc("member", {"user list after delete": as_json("user", "list", pid),
                                   "db list after delete": as_json("db", "list", pid)})
    return printed


@pytest.fixture(scope="module")
def logs(mode, primary) -> dict[str, Printed]:
    pid = primary.id
    printed = mode.osc("member", {
        "log list": as_json("log", "list", pid),
        "log set --enable": as_json("log", "set", pid, "general", "--enable")})
    with connect(mode.member.instances.get(pid), "app", APP_PASSWORD, "appdb") as conn:
        conn.execute("SELECT 'coffer_compat_marker'")
    return printed | mode.osc("member", {
        "log show": as_json("log", "show", pid, "general"),
        "log set --publish": as_json("log", "set", pid, "general", "--publish"),
        "log show after publish": as_json("log", "show", pid, "general"),
        "log set --discard --disable": as_json("log", "set", pid, "general", "--discard", "--disable"),
        "log show after discard": as_json("log", "show", pid, "general"),
    })


@pytest.fixture(scope="module")
def group_changes(mode, primary) -> dict[str, Printed]:
    """The group the primary was made with: detached, changed, attached again (two
    ways each), then deleted; each change waits for the agent to apply it."""
    client, pid, gid = mode.member, primary.id, primary.group_id
    printed = mode.osc("member", {
        "configuration instances": as_json("configuration", "instances", gid),
        "configuration default": as_json("configuration", "default", pid),
        "configuration detach": osc("configuration", "detach", pid)})
    configured(client, pid, None)
    printed |= mode.osc("member", {
        "configuration parameter set": osc("configuration", "parameter", "set", gid, '{"statement_timeout": 3000}'),
        "configuration set": osc("configuration", "set", gid, '{"statement_timeout": 3500}', "--name",
                                 "compat-group-changed", "--description", "changed by the compatibility suite"),
        "configuration show after set": as_json("configuration", "show", gid),
        "configuration attach": osc("configuration", "attach", pid, gid)})
    configured(client, pid, gid)
    inst = client.instances.get(pid)
    with connect(inst, "app", APP_PASSWORD, "appdb") as conn:
        printed["statement_timeout once attached"] = conn.execute("SHOW statement_timeout").fetchone()[0]
    printed |= mode.osc("member", {
        "configuration delete while attached": osc("configuration", "delete", gid),
        "instance update --remove-configuration": osc("instance", "update", pid, "--remove-configuration")})
    configured(client, pid, None)
    printed |= mode.osc("member", {"instance update --configuration": osc("instance", "update", pid,
                                                                          "--configuration", gid)})
    configured(client, pid, gid)
    printed |= mode.osc("member", {
        "configuration instances once attached": as_json("configuration", "instances", gid),
        "configuration detach again": osc("configuration", "detach", pid)})
    configured(client, pid, None)
    printed |= mode.osc("member", {
        "configuration delete": osc("configuration", "delete", gid),
        "configuration list after delete": as_json("configuration", "list")})
    return printed


@pytest.fixture(scope="module")
def backups(mode, primary):
    """A full backup of the primary and an incremental one on top of it."""
    client, pid = mode.member, primary.id
    made = []
    try:
        printed = mode.osc("member", {"backup create": as_json(
            "backup", "create", "compat-full", "--instance", pid, "--description", "the full one")})
        made.append(printed["backup create"].json()["id"])
        wait_backup(client, made[0])
        printed |= mode.osc("member", {"backup create --incremental": as_json(
            "backup", "create", "compat-incr", "--instance", pid, "--incremental")})
        made.append(printed["backup create --incremental"].json()["id"])
        wait_backup(client, made[1])
        printed |= mode.osc("member", {
            "backup list": as_json("backup", "list"),
            "backup list instance": as_json("backup", "list", "instance", pid),
            "backup show by name": as_json("backup", "show", "compat-full"),
        })
        yield Made(made[0], printed)
    finally:
        for backup_id in reversed(made):
            try:
                client.backups.delete(backup_id)
            except trove_exc.NotFound:
                pass  # a test deleted it


@pytest.fixture(scope="module")
def restored(mode, backups):
    """An instance restored from the incremental backup (so from the chain); then
    the incremental backup deleted."""
    client, version = mode.member, installed_pg_version()
    printed = mode.osc("member", {"instance create --backup": as_json(
        "instance", "create", "compat-restored", "--flavor", "d1", "--size", "1", "--datastore", "postgresql",
        "--datastore-version", version, "--backup", "compat-incr")})
    instance_id = printed["instance create --backup"].json()["id"]
    try:
        inst = wait_active(client, instance_id, timeout=120)
        printed["app logs in on the restored"] = logs_in(inst, "app", APP_PASSWORD)
        printed |= mode.osc("member", {"backup delete": osc("backup", "delete", "compat-incr")})
        wait_for(lambda: "compat-incr" not in {b.name for b in client.backups.list()}, 30, what="compat-incr deleted")
        printed |= mode.osc("member", {"backup list after delete": as_json("backup", "list")})
        yield Made(instance_id, printed)
    finally:
        quietly_delete_instance(client, instance_id)


@pytest.fixture(scope="module")
def instance_actions(mode, restored) -> dict[str, Printed]:
    """What a member and an admin do to a running instance, on the restored one; it
    ends deleted with --force."""
    client, rid = mode.member, restored.id
    printed = mode.osc("member", {
        "instance update --name": osc("instance", "update", rid, "--name", "compat-restored-renamed"),
        "instance show renamed": as_json("instance", "show", rid),
        "instance resize flavor": osc("instance", "resize", "flavor", rid, "d2")})
    printed["status during the resize"] = client.instances.get(rid).status
    settled(client, rid, lambda inst: inst.flavor["id"] == "d2", timeout=90)
    printed |= mode.osc("member", {"instance resize volume": osc("instance", "resize", "volume", rid, "2")})
    settled(client, rid, lambda inst: inst.volume["size"] == 2, timeout=90)
    printed |= mode.osc("member", {"instance show resized": as_json("instance", "show", rid),
                                   "instance restart": osc("instance", "restart", rid)})
    printed["status after restart"] = client.instances.get(rid).status
    settled(client, rid, timeout=90)
    printed |= mode.osc("admin", {"instance reboot": osc("instance", "reboot", rid)})
    printed["status after reboot"] = client.instances.get(rid).status
    settled(client, rid, timeout=90)
    printed |= mode.osc("admin", {
        "instance reset status": osc("instance", "reset", "status", rid),
        "instance show after reset": as_json("instance", "show", rid),
        "instance delete --force": osc("instance", "delete", "--force", rid)})
    wait_gone(client, rid, timeout=60)
    return printed


@pytest.fixture(scope="module")
def replica(mode, primary):
    """A replica of the primary, promoted in its place; then the set broken up."""
    client, pid = mode.member, primary.id
    printed = mode.osc("member", {"instance create --replica-of": as_json(
        "instance", "create", "compat-replica", "--replica-of", pid)})
    rid = printed["instance create --replica-of"].json()["id"]
    try:
        settled(client, rid, lambda inst: inst.replica_of["id"] == pid, timeout=120)
        printed |= mode.osc("member", {
            "instance show replica": as_json("instance", "show", rid),
            "instance show primary": as_json("instance", "show", pid),
            "instance list with the set": as_json("instance", "list"),
            "instance eject of a healthy primary": osc("instance", "eject", pid),
            "instance promote": osc("instance", "promote", rid)})
        settled(client, pid, lambda inst: getattr(inst, "replica_of", {}).get("id") == rid, timeout=90)
        settled(client, rid, lambda inst: not hasattr(inst, "replica_of"))
        printed |= mode.osc("member", {
            "instance show old primary": as_json("instance", "show", pid),
            "instance detach": osc("instance", "detach", pid)})
        settled(client, pid, lambda inst: not hasattr(inst, "replica_of"), timeout=90)
        settled(client, rid, lambda inst: not hasattr(inst, "replicas"))
        printed |= mode.osc("member", {
            "instance show detached": as_json("instance", "show", pid),
            "instance update --detach-replica-source of a primary": osc("instance", "update", pid,
                                                                        "--detach-replica-source")})
        yield Made(rid, printed)
    finally:
        quietly_delete_instance(client, rid)


@pytest.fixture(scope="module")
def admin_view(mode, primary) -> dict[str, Printed]:
    printed = mode.osc("admin", {
        "quota update": as_json("quota", "update", mode.project, "instances", "12"),
        "instance list --all-projects": as_json("instance", "list", "--all-projects")})
    printed |= mode.osc("member", {"limit list after quota update": osc("limit", "list")})
    return printed


@pytest.fixture(scope="module")
def refused(mode, primary) -> dict[str, Printed]:
    """Commands Coffer answers with an error, each a process of its own for its exit status."""
    pid, version = primary.id, installed_pg_version()
    return mode.one_shot({
        "instance upgrade": ("member", osc("instance", "upgrade", pid, version)),
        "instance rebuild": ("admin", osc("instance", "rebuild", pid, "an-image")),
        "instance update --is-private": ("member", osc("instance", "update", pid, "--is-private")),
        "cluster create": ("member", osc("cluster", "create", "compat-cluster", "postgresql", version,
                                         "--instance", "flavor=d1,volume=1")),
        "ssl show": ("member", osc("ssl", "show", pid)),
    })


CLUSTER_COMMANDS = {  # each naming a cluster, none of which exists
    "cluster show": ["show", "{}"], "cluster delete": ["delete", "{}"], "cluster force delete": ["force", "delete", "{}"],
    "cluster grow": ["grow", "{}", "--instance", "flavor=d1,volume=1"], "cluster shrink": ["shrink", "{}", "member-1"],
    "cluster upgrade": ["upgrade", "{}", "15"], "cluster reset status": ["reset", "status", "{}"],
    "cluster list instances": ["list", "instances", "{}"], "cluster modules": ["modules", "{}"]}


@pytest.fixture(scope="module")
def no_clusters_no_ssl(mode, primary) -> dict[str, Printed]:
    made_up, pid = str(uuid.uuid4()), primary.id
    return mode.osc("member", {
        "cluster list": as_json("cluster", "list"),
        **{label: osc("cluster", *(made_up if w == "{}" else w for w in words))
           for label, words in CLUSTER_COMMANDS.items()},
        "ssl enable": osc("ssl", "enable", pid, "a-container-ref"), "ssl disable": osc("ssl", "disable", pid),
        "ssl rollback": osc("ssl", "rollback", pid)}) | {"made-up id": made_up}


@pytest.fixture(scope="module")
def registered_version(mode) -> dict[str, Printed]:
    """An admin registers a datastore version (shared by every project: a name of
    its own), switches it off and deletes it."""
    name = f"compat-{uuid.uuid4().hex[:8]}"
    printed = mode.osc("admin", {"datastore version create": [
        "datastore", "version", "create", name, "postgresql", "postgresql", "an-image", "--active",
        "--version-number", "99.1"]})
    made = [v.id for v in mode.admin.mgmt_ds_versions.list() if v.name == name]
    try:
        printed |= mode.osc("member", {"datastore version show as a member": [
            "datastore", "version", "show", name, "--datastore", "postgresql", "-f", "json"]})
        printed |= mode.osc("admin", {"datastore version set --disable": [
            "datastore", "version", "set", *made, "--disable"]})
        printed |= mode.osc("member", {"datastore version list once disabled": [
            "datastore", "version", "list", "postgresql", "-f", "json"]})
        printed |= mode.osc("admin", {"datastore version delete": ["datastore", "version", "delete", *made]})
        printed |= mode.osc("admin", {"datastore version list after delete": [
            "datastore", "version", "list", "postgresql", "-f", "json"]})
        return printed | {"name": name}
    finally:
        for version_id in made:
            try:
                mode.admin.mgmt_ds_versions.delete(version_id)
            except trove_exc.NotFound:
                pass  # deleted above


@pytest.fixture(scope="module")
def deleted(mode, primary, replica) -> dict[str, Printed]:
    """The set's two instances deleted by the member, once every other area is done."""
    printed = mode.osc("member", {"instance delete": osc("instance", "delete", primary.id, replica.id)})
    for instance_id in (primary.id, replica.id):
        wait_gone(mode.member, instance_id, timeout=60)
    return printed | mode.osc("member", {"instance list after delete": as_json("instance", "list")})


# -- what a user sees ----------------------------------------------------------------

def test_flavors_datastores_and_parameters(catalog):
    flavors = {f["Name"]: f for f in catalog["flavor list"].json()}
    assert flavors["ds512M"]["ID"] == "d1" and flavors["ds512M"]["RAM"] == 512
    assert {"ds1G", "ds2G", "ds4G"} <= set(flavors)
    assert {f["ID"] for f in catalog["flavor list of a version"].json()} == {f["ID"] for f in flavors.values()}
    assert "postgresql" in {d["Name"] for d in catalog["datastore list"].json()}
    version = installed_pg_version()
    shown = catalog["datastore show"].json()
    assert shown["name"] == "postgresql" and shown["versions (id)"].startswith(f"{version} (")
    assert version in {v["Name"] for v in catalog["datastore version list"].json()}
    assert catalog["datastore version show"].json()["name"] == version
    parameters = {p["Name"]: p for p in catalog["parameter list"].json()}
    assert parameters["max_connections"]["Restart Required"] is True
    assert parameters["statement_timeout"]["Restart Required"] is False
    shown = catalog["parameter show"].json()
    assert shown["name"] == "max_connections" and shown["type"] == "integer" and shown["restart_required"] is True


def test_limit_list(catalog):
    rows = catalog["limit list"].table()  # two tables: the absolute limits, then the rate limits
    assert {"max_instances": "10", "max_volumes": "40", "max_ram": "-1", "verb": "ABSOLUTE"}.items() <= dict(
        r for r in rows if len(r) == 2).items()
    assert {r[1] for r in rows if len(r) == 4} >= {"Verb", "GET", "POST", "PUT", "DELETE"}


def test_instance_create_with_databases_users_and_a_group(primary):
    printed = primary.printed
    group = printed["configuration create"].json()
    assert group["name"] == "compat-group" and json.loads(group["values"]) == {"statement_timeout": 2500}
    assert group["datastore_name"] == "postgresql" and group["instance_count"] == 0
    created = printed["instance create"].json()
    assert created["name"] == "compat-pg" and created["status"] == "BUILD"
    assert created["flavor"] == "d1" and created["datastore"] == "postgresql" and created["volume"] == 1
    assert printed["status once built"] == "ACTIVE"


def test_instance_list_and_show(primary):
    printed = primary.printed
    [listed] = [i for i in printed["instance list"].json() if i["ID"] == primary.id]
    assert (listed["Name"], listed["Status"], listed["Operating Status"], listed["Flavor ID"], listed["Size"]) == (
        "compat-pg", "ACTIVE", "HEALTHY", "d1", 1)
    assert listed["Addresses"]
    shown = printed["instance show by name"].json()  # the client's name lookup
    assert shown["id"] == primary.id and shown["status"] == "ACTIVE" and shown["operating_status"] == "HEALTHY"
    assert shown["datastore_version"] == installed_pg_version() and shown["configuration"] == primary.group_id


def test_configuration_list_and_show(primary):
    printed = primary.printed
    [listed] = [g for g in printed["configuration list"].json() if g["ID"] == primary.group_id]
    assert listed["Name"] == "compat-group" and listed["Datastore Name"] == "postgresql"
    shown = printed["configuration show by name"].json()
    assert shown["id"] == primary.group_id and shown["instance_count"] == 1


def test_quota_show(primary):
    quotas = {q["Resource"]: q for q in primary.printed["quota show"].json()}
    assert quotas["instances"]["In Use"] == 1 and quotas["instances"]["Limit"] == 10


def test_databases(accounts):
    assert accounts["db create"].silent
    assert {"appdb", "salesdb"} <= {d["Name"] for d in accounts["db list"].json()}
    assert accounts["db delete"].silent
    assert "salesdb" not in {d["Name"] for d in accounts["db list after delete"].json()}


def test_users(accounts):
    assert accounts["user create"].silent
    listed = {u["Name"]: u for u in accounts["user list"].json()}
    assert listed["alice"]["Host"] == "%" and "salesdb" in listed["alice"]["Databases"]
    assert listed["app"]["Host"] == "%" and "appdb" in listed["app"]["Databases"]
    shown = accounts["user show"].json()
    assert shown["name"] == "alice" and shown["host"] == "%"
    assert accounts["user update attributes"].silent and accounts["alice logs in with the new password"]
    assert accounts["user grant access"].silent
    assert {d["Name"] for d in accounts["user show access"].json()} == {"appdb", "salesdb"}
    assert accounts["user revoke access"].silent
    assert [d["Name"] for d in accounts["user show access after revoke"].json()] == ["appdb"]
    assert accounts["user delete"].silent
    assert "alice" not in {u["Name"] for u in accounts["user list after delete"].json()}


def test_root(accounts):
    enabled = accounts["root enable"].json()
    assert enabled["name"] == "root" and len(enabled["password"]) >= 16
    assert accounts["root show"].json() == {"is_root_enabled": True}
    assert accounts["root disable"].silent
    assert accounts["root show after disable"].json() == {"is_root_enabled": False}


def test_logs(logs):
    listed = {row["Name"]: row for row in logs["log list"].json()}
    assert listed["general"]["Type"] == "USER" and listed["general"]["Status"] == "Disabled"
    assert logs["log set --enable"].json()["status"] in ("Enabled", "Ready")  # Ready: it has lines to publish
    assert logs["log show"].json()["name"] == "general"
    published = logs["log show after publish"].json()
    assert logs["log set --publish"].json()["status"] == "Published" == published["status"]
    assert published["published"] > 0 and published["container"] and published["prefix"]
    discarded = logs["log show after discard"].json()
    assert discarded["status"] == "Disabled" and discarded["published"] == 0


def test_configuration_default_instances_detach_set_attach_delete(primary, group_changes):
    printed, gid = group_changes, primary.group_id
    assert [i["ID"] for i in printed["configuration instances"].json()] == [primary.id]
    assert printed["configuration default"].json()["statement_timeout"] == 2500  # what the engine runs
    assert printed["configuration detach"].silent and printed["configuration attach"].silent
    assert printed["configuration parameter set"].silent and printed["configuration set"].silent
    shown = printed["configuration show after set"].json()
    assert shown["name"] == "compat-group-changed" and shown["description"] == "changed by the compatibility suite"
    assert json.loads(shown["values"]) == {"statement_timeout": 3500}
    assert printed["statement_timeout once attached"] == "3500ms"
    assert printed["configuration delete while attached"].out == ""
    assert "is attached" in printed["configuration delete while attached"].err
    assert printed["instance update --remove-configuration"].silent and printed["instance update --configuration"].silent
    assert [i["ID"] for i in printed["configuration instances once attached"].json()] == [primary.id]
    assert printed["configuration delete"].silent
    assert gid not in {g["ID"] for g in printed["configuration list after delete"].json()}


def test_backups(primary, backups):
    printed = backups.printed
    full = printed["backup create"].json()
    assert full["name"] == "compat-full" and full["instance_id"] == primary.id and full["status"] == "NEW"
    assert full["datastore"] == "postgresql" and full["description"] == "the full one"
    incremental = printed["backup create --incremental"].json()
    assert incremental["parent_id"] == full["id"]
    listed = {b["Name"]: b for b in printed["backup list"].json()}
    assert listed["compat-full"]["Status"] == "COMPLETED" and listed["compat-incr"]["Parent ID"] == full["id"]
    assert {b["Name"] for b in printed["backup list instance"].json()} == {"compat-full", "compat-incr"}
    shown = printed["backup show by name"].json()
    assert shown["id"] == full["id"] and shown["status"] == "COMPLETED" and shown["size"] > 0


def test_restore_and_backup_delete(backups, restored):
    printed = backups.printed | restored.printed
    created = printed["instance create --backup"].json()
    assert created["name"] == "compat-restored" and created["status"] == "BUILD"
    assert printed["app logs in on the restored"]  # the primary's user and database, from the backup
    incremental = printed["backup create --incremental"].json()["id"]
    assert printed["backup delete"].out.strip() == f"Request to delete database backup {incremental} has been accepted."
    assert "compat-incr" not in {b["Name"] for b in printed["backup list after delete"].json()}


def test_instance_update_resize_restart(instance_actions):
    printed = instance_actions
    assert printed["instance update --name"].silent
    assert printed["instance show renamed"].json()["name"] == "compat-restored-renamed"
    assert printed["instance resize flavor"].silent and printed["status during the resize"] in ("RESIZE", "ACTIVE")
    assert printed["instance resize volume"].silent
    resized = printed["instance show resized"].json()
    assert resized["flavor"] == "d2" and resized["volume"] == 2
    assert printed["instance restart"].silent and printed["status after restart"] in ("REBOOT", "ACTIVE")


def test_admin_reboot_reset_status_and_force_delete(restored, instance_actions):
    printed = instance_actions
    assert printed["instance reboot"].silent and printed["status after reboot"] in ("REBOOT", "ACTIVE")
    assert printed["instance reset status"].silent
    assert printed["instance show after reset"].json()["status"] == "ERROR"
    assert printed["instance delete --force"].out.strip() == (
        f"Request to delete database instance {restored.id} has been accepted.")


def test_replica_promote_eject_detach(primary, replica):
    printed = replica.printed
    created = printed["instance create --replica-of"].json()
    assert created["name"] == "compat-replica" and created["replica_of"] == primary.id
    assert printed["instance show replica"].json()["replica_of"] == primary.id
    assert printed["instance show primary"].json()["replicas"] == replica.id
    roles = {i["ID"]: i["Role"] for i in printed["instance list with the set"].json()}
    assert (roles[primary.id], roles[replica.id]) == ("primary", "replica")
    refused = printed["instance eject of a healthy primary"]
    assert refused.out == "" and f"Instance {primary.id} is healthy" in refused.err
    assert printed["instance promote"].silent
    assert printed["instance show old primary"].json()["replica_of"] == replica.id
    assert printed["instance detach"].silent
    assert "replica_of" not in printed["instance show detached"].json()
    not_replica = printed["instance update --detach-replica-source of a primary"]
    assert not_replica.out == "" and f"Instance {primary.id} is not a replica" in not_replica.err


def test_admin_quota_update_and_all_projects(mode, primary, admin_view):
    assert admin_view["quota update"].json()["instances"] == 12
    assert ["max_instances", "12"] in admin_view["limit list after quota update"].table()
    [mine] = [i for i in admin_view["instance list --all-projects"].json() if i["ID"] == primary.id]
    assert mine["Tenant ID"] == mode.project and mine["Server ID"]


def test_what_coffer_does_not_do_is_a_clear_error(refused):
    version = installed_pg_version()
    for label, printed in refused.items():
        if label != "instance update --is-private":
            assert printed.status != 0 and printed.out == "", label
    assert "the only installed version of postgresql" in refused["instance upgrade"].err
    assert f"postgresql {version}" in refused["instance upgrade"].err
    assert "'rebuild' (rebuilding from an image) is not available" in refused["instance rebuild"].err
    # made private: it was not public, so only the record changes, at once (tests/e2e/test_public_access.py)
    made_private = refused["instance update --is-private"]
    assert made_private.status == 0 and made_private.silent, made_private.err


def test_clusters_are_none_and_creating_one_says_to_use_replicas(no_clusters_no_ssl, refused):
    printed = no_clusters_no_ssl
    assert printed["cluster list"].json() == []
    for label in CLUSTER_COMMANDS:
        assert printed[label].out == "" and printed["made-up id"] in printed[label].err, label
    assert f"No cluster with a name or ID of '{printed['made-up id']}' exists." in printed["cluster show"].err
    created = refused["cluster create"]
    assert created.status != 0 and created.out == ""
    assert "Clusters are not supported by Coffer; use replicas (replica_of) for replication." in created.err


def test_ssl_is_not_supported(no_clusters_no_ssl, refused):
    shown = refused["ssl show"]
    assert shown.status != 0 and shown.out == ""
    for printed in (shown, *(no_clusters_no_ssl[f"ssl {verb}"] for verb in ("enable", "disable", "rollback"))):
        assert "SSL for an instance is not supported by Coffer" in printed.err and "(HTTP 501)" in printed.err, \
            printed.command


def test_an_admin_registers_disables_and_deletes_a_datastore_version(registered_version):
    printed, name = registered_version, registered_version["name"]
    assert printed["datastore version create"].silent
    shown = printed["datastore version show as a member"].json()
    assert shown["name"] == name and shown["version"] == "99.1"
    assert printed["datastore version set --disable"].silent
    assert name not in {v["Name"] for v in printed["datastore version list once disabled"].json()}
    assert printed["datastore version delete"].silent
    assert name not in {v["Name"] for v in printed["datastore version list after delete"].json()}


def test_instance_delete(primary, replica, deleted):
    lines = deleted["instance delete"].out.strip().splitlines()
    assert lines == [f"Request to delete database instance {i} has been accepted." for i in (primary.id, replica.id)]
    assert not {primary.id, replica.id} & {i["ID"] for i in deleted["instance list after delete"].json()}
