"""The Trove clients, unchanged, against Coffer: every command of reference §7.3
that Coffer serves today, with the real `openstack` CLI and python-troveclient,
once with a built-in token (--os-auth-type admin_token, the endpoint given) and
once through a real Keystone's catalog (password login, the endpoint found under
service type `database`). Each command's printed output is checked.

An `openstack` process costs 1-2 s of start-up before it sends a request, so the
commands run in a few interactive sessions (`openstack` reading commands on its
standard input, as a person types them), with markers between their outputs;
the instance's waits happen between the sessions."""
from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from keystoneauth1.token_endpoint import Token
from troveclient.v1 import client as trove_client

from tests.conftest import RUN_ID
from tests.e2e.support import installed_pg_version, wait_active, wait_gone

pytestmark = pytest.mark.e2e
OPENSTACK = str(Path(sys.executable).with_name("openstack"))
MARK = "@@coffer-output "


@dataclass
class Identity:
    """How one role of one mode reaches the API: CLI arguments and environment, and a troveclient."""
    args: list[str]
    env: dict
    client: trove_client.Client


@dataclass
class Mode:
    name: str
    project: str
    roles: dict[str, Identity]
    errors: str = ""  # what the sessions wrote on standard error

    def osc(self, role: str, *commands: list[str]) -> list[str]:
        """What each of `commands` printed, run in one interactive `openstack` session as `role`."""
        who = self.roles[role]
        script = "".join(f'shell echo "{MARK}{i}"\n{" ".join(shlex.quote(a) for a in command)}\n'
                         for i, command in enumerate(commands)) + f'shell echo "{MARK}end"\n'
        out = subprocess.run([OPENSTACK, *who.args], input=script, capture_output=True, text=True, timeout=300,
                             env={**os.environ, **who.env, "PYTHONUNBUFFERED": "1"})  # in order with the markers
        printed = out.stdout.split(MARK)[1:]
        assert len(printed) == len(commands) + 1, f"openstack stopped early: {out.stderr[-2000:]}"
        self.errors += out.stderr
        return [p.split("\n", 1)[1] if "\n" in p else "" for p in printed[:-1]]


def parsed(outputs: dict, key: str):
    """The JSON a command printed; what the CLI said on standard error when it printed none."""
    try:
        return json.loads(outputs[key])
    except ValueError:
        raise AssertionError(f"{key} printed {outputs[key]!r}; the CLI said: {outputs['errors'][-2000:]}")


def table(printed: str) -> list[list[str]]:
    """The rows of the tables a command printed, as lists of cells."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in printed.splitlines()
            if line.startswith("|")]


def builtin_mode(stack) -> Mode:
    from coffer.cli import _create_token
    # a UUID-like project id: `quota show/update` look any other up in Keystone
    project = uuid.uuid4().hex
    url = f"{stack.api_url}/v1.0/{project}"
    roles = {}
    for role in ("admin", "member"):
        token = asyncio.run(_create_token(project, role))
        roles[role] = Identity(["--os-auth-type", "admin_token", "--os-token", token, "--os-endpoint", url],
                               {}, trove_client.Client(session=ks_session.Session(auth=Token(url, token))))
    return Mode("admin_token", project, roles)


def keystone_mode(keystone) -> Mode:
    roles = {}
    for role in ("admin", "member"):
        user, password = f"{role}-{RUN_ID}", f"{role}-secret"
        env = {"OS_AUTH_URL": keystone.url, "OS_USERNAME": user, "OS_PASSWORD": password,
               "OS_PROJECT_ID": keystone.tenant, "OS_USER_DOMAIN_ID": "default", "OS_PROJECT_DOMAIN_ID": "default",
               "OS_IDENTITY_API_VERSION": "3", "OS_INTERFACE": "public"}
        session = ks_session.Session(auth=v3.Password(
            auth_url=keystone.url, username=user, password=password, project_id=keystone.tenant,
            user_domain_id="default", project_domain_id="default"))
        roles[role] = Identity([], env, trove_client.Client(session=session))
    return Mode("keystone catalog", keystone.tenant, roles)


@pytest.fixture(scope="module", params=["admin_token", "keystone"])
def mode(request, stack):
    if request.param == "keystone":
        request.getfixturevalue("keystone_api")
        return keystone_mode(request.getfixturevalue("keystone"))
    return builtin_mode(stack)


@pytest.fixture(scope="module")
def printed(mode):
    """Every command's output, in the order a person would type them; the
    instance's waits (python-troveclient) between the sessions."""
    version, member = installed_pg_version(), mode.roles["member"].client
    out = {}
    (out["flavor list"], out["datastore list"], out["datastore show"], out["datastore version list"],
     out["datastore version show"], out["instance create"], out["limit list"], out["quota show"]) = mode.osc(
        "member", ["database", "flavor", "list", "-f", "json"], ["datastore", "list", "-f", "json"],
        ["datastore", "show", "postgresql", "-f", "json"], ["datastore", "version", "list", "postgresql", "-f", "json"],
        ["datastore", "version", "show", version, "--datastore", "postgresql", "-f", "json"],
        ["database", "instance", "create", "compat-pg", "--flavor", "d1", "--size", "1", "--datastore", "postgresql",
         "--datastore-version", version, "--databases", "appdb", "--users", "app:S3cret-pass", "-f", "json"],
        ["database", "limit", "list"], ["database", "quota", "show", mode.project, "-f", "json"])
    out["errors"] = mode.errors
    created = parsed(out, "instance create")
    out["id"] = instance_id = created["id"]
    try:
        out["create status"] = wait_active(member, instance_id).status
        (out["instance list"], out["instance show"], out["instance update"], out["shown renamed"],
         out["instance restart"]) = mode.osc(
            "member", ["database", "instance", "list", "-f", "json"],
            ["database", "instance", "show", "compat-pg", "-f", "json"],
            ["database", "instance", "update", instance_id, "--name", "compat-pg-renamed"],
            ["database", "instance", "show", instance_id, "-f", "json"],
            ["database", "instance", "restart", instance_id])
        out["status after restart"] = member.instances.get(instance_id).status
        wait_active(member, instance_id)
        out["quota update"], out["instance list --all-projects"], out["instance reboot"] = mode.osc(
            "admin", ["database", "quota", "update", mode.project, "instances", "12", "-f", "json"],
            ["database", "instance", "list", "--all-projects", "-f", "json"],
            ["database", "instance", "reboot", instance_id])
        out["status after reboot"] = member.instances.get(instance_id).status
        out["limits after quota update"] = member.limits.list()[0].max_instances
        wait_active(member, instance_id)
        [out["instance reset status"]] = mode.osc("admin", ["database", "instance", "reset", "status", instance_id])
        out["status after reset"] = member.instances.get(instance_id).status
        out["mgmt list"] = [i.id for i in mode.roles["admin"].client.mgmt_instances.list(project_id=mode.project)]
        [out["instance delete"]] = mode.osc("member", ["database", "instance", "delete", instance_id])
        wait_gone(member, instance_id, timeout=60)
        [out["list after delete"]] = mode.osc("member", ["database", "instance", "list", "-f", "json"])
    finally:
        try:
            member.instances.delete(instance_id)
        except Exception:
            pass  # deleted above
    out["errors"] = mode.errors
    return out


def test_flavor_and_datastore_commands(printed):
    flavors = {f["Name"]: f for f in parsed(printed, "flavor list")}
    assert flavors["ds512M"]["ID"] == "d1" and flavors["ds512M"]["RAM"] == 512
    assert {"ds1G", "ds2G", "ds4G"} <= set(flavors)
    assert "postgresql" in {d["Name"] for d in parsed(printed, "datastore list")}
    version = installed_pg_version()
    shown = parsed(printed, "datastore show")
    assert shown["name"] == "postgresql" and shown["versions (id)"].startswith(f"{version} (")
    assert version in {v["Name"] for v in parsed(printed, "datastore version list")}
    assert parsed(printed, "datastore version show")["name"] == version


def test_instance_create_list_show(printed):
    created = parsed(printed, "instance create")
    assert created["name"] == "compat-pg" and created["status"] == "BUILD"
    assert created["flavor"] == "d1" and created["datastore"] == "postgresql" and created["volume"] == 1
    assert printed["create status"] == "ACTIVE"
    [listed] = [i for i in parsed(printed, "instance list") if i["ID"] == printed["id"]]
    assert (listed["Name"], listed["Status"], listed["Operating Status"], listed["Flavor ID"], listed["Size"]) == (
        "compat-pg", "ACTIVE", "HEALTHY", "d1", 1)
    assert listed["Addresses"]
    shown = parsed(printed, "instance show")  # by name: the client's name lookup
    assert shown["id"] == printed["id"] and shown["status"] == "ACTIVE" and shown["operating_status"] == "HEALTHY"
    assert shown["datastore_version"] == installed_pg_version()


def test_instance_update_and_restart(printed):
    assert printed["instance update"] == "" and parsed(printed, "shown renamed")["name"] == "compat-pg-renamed"
    assert printed["instance restart"] == "" and printed["status after restart"] in ("REBOOT", "ACTIVE")


def test_limits_and_quotas(mode, printed):
    rows = table(printed["limit list"])  # two tables: the absolute limits, then the rate limits
    assert {"max_instances": "10", "max_volumes": "40", "max_ram": "-1", "verb": "ABSOLUTE"}.items() <= dict(
        r for r in rows if len(r) == 2).items()
    assert {r[1] for r in rows if len(r) == 4} >= {"Verb", "GET", "POST", "PUT", "DELETE"}
    quotas = {q["Resource"]: q for q in parsed(printed, "quota show")}
    assert quotas["instances"]["In Use"] == 1 and quotas["instances"]["Limit"] == 10
    assert parsed(printed, "quota update")["instances"] == 12 and printed["limits after quota update"] == 12


def test_admin_commands(mode, printed):
    [mine] = [i for i in parsed(printed, "instance list --all-projects") if i["ID"] == printed["id"]]
    assert mine["Tenant ID"] == mode.project and mine["Server ID"]
    assert printed["instance reboot"] == "" and printed["status after reboot"] in ("REBOOT", "ACTIVE")
    assert printed["instance reset status"] == "" and printed["status after reset"] == "ERROR"
    assert printed["mgmt list"] == [printed["id"]]


def test_instance_delete(printed):
    assert printed["instance delete"].strip() == f"Request to delete database instance {printed['id']} has been accepted."
    assert printed["id"] not in printed["list after delete"]
