"""The Trove routes Coffer answers without a feature behind them (clusters, SSL) and
the mgmt extension's datastore versions and configuration parameters, driven with
the real `openstack` CLI and python-troveclient where they have commands, and with
plain requests where they have none. Datastore versions are shared by every
project: whatever a test registers it deletes."""
from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import requests
from troveclient import exceptions as trove_errors
from troveclient.v1 import diagnostics, management

from tests.conftest import trove, wait_for
from tests.e2e.support import installed_pg_version, wait_active, wait_gone
from tests.e2e.test_trove_clients import builtin_mode

pytestmark = pytest.mark.e2e


class Project:
    """A project of its own: its admin and member tokens, plain HTTP and troveclient."""

    def __init__(self, stack):
        from coffer.cli import _create_token
        self.stack = stack
        self.name = f"mgmt-{uuid.uuid4().hex[:8]}"
        self.tokens = {role: asyncio.run(_create_token(self.name, role)) for role in ("admin", "member")}
        self.admin, self.member = (trove(stack, self.tokens[r], self.name) for r in ("admin", "member"))

    def call(self, method: str, path: str, body=None, role: str = "admin"):
        return requests.request(method, f"{self.stack.api_url}/v1.0/{self.name}{path}", json=body, timeout=30,
                                headers={"X-Auth-Token": self.tokens[role]})


@pytest.fixture(scope="module")
def project(stack):
    return Project(stack)


@pytest.fixture(scope="module")
def instance(project):
    inst = project.member.instances.create("mgmt-pg", "d1", volume={"size": 1}, datastore="postgresql",
                                           datastore_version=installed_pg_version())
    wait_active(project.member, inst.id)
    yield inst
    project.member.instances.delete(inst.id)
    wait_gone(project.member, inst.id, timeout=60)


def fault(response) -> tuple[int, str, str]:
    name, body = next(iter(response.json().items()))
    return response.status_code, name, body["message"]


def test_clusters_are_an_empty_collection_and_creating_one_says_to_use_replicas(stack, project):
    assert project.call("GET", "/clusters", role="member").json() == {"clusters": []}
    assert project.member.clusters.list() == []
    made_up = str(uuid.uuid4())
    for method in ("GET", "DELETE"):
        assert fault(project.call(method, f"/clusters/{made_up}", role="member"))[:2] == (404, "itemNotFound")
    assert fault(project.call("POST", f"/clusters/{made_up}", {"grow": []}, role="member"))[:2] == (
        404, "itemNotFound")
    created = project.call("POST", "/clusters", {"cluster": {"name": "c", "datastore": {"type": "postgresql"},
                                                             "instances": []}}, role="member")
    assert created.json() == {"notImplemented": {"code": 501, "message": (
        "Clusters are not supported by Coffer; use replicas (replica_of) for replication.")}}
    with pytest.raises(trove_errors.NotFound):
        project.member.clusters.get(made_up)
    # the mgmt view: as empty, admins only
    assert project.call("GET", "/mgmt/clusters").json() == {"clusters": []}
    assert fault(project.call("GET", f"/mgmt/clusters/{made_up}"))[:2] == (404, "itemNotFound")
    assert fault(project.call("GET", "/mgmt/clusters", role="member"))[:2] == (401, "unauthorized")
    # what the CLI prints
    mode = builtin_mode(stack)
    try:
        printed = mode.osc("member", {"list": ["database", "cluster", "list", "-f", "json"],
                                      "show": ["database", "cluster", "show", made_up]})
    finally:
        mode.close()
    assert printed["list"].json() == [] and printed["show"].out == ""
    # its 404, then the name lookup
    assert f"No cluster with a name or ID of '{made_up}' exists." in printed["show"].err


def test_ssl_is_501_for_an_instance_and_404_for_any_other(stack, project, instance):
    for method, body in (("GET", None), ("POST", {"ssl": {"enable": True}})):
        code, name, message = fault(project.call(method, f"/instances/{instance.id}/ssl", body, role="member"))
        assert (code, name) == (501, "notImplemented") and "Barbican" in message
        assert fault(project.call(method, f"/instances/{uuid.uuid4()}/ssl", body, role="member"))[:2] == (
            404, "itemNotFound")
    other = Project(stack)
    assert fault(other.call("GET", f"/instances/{instance.id}/ssl", role="member"))[:2] == (404, "itemNotFound")


def versions_of(client, datastore: str = "postgresql") -> dict:
    return {v.name: v for v in client.datastore_versions.list(datastore)}


def test_an_admin_registers_switches_off_and_deletes_a_version_with_the_cli(stack, project):
    name, mode = f"reg-{uuid.uuid4().hex[:6]}", builtin_mode(stack)
    created = mode.osc("admin", {"create": ["datastore", "version", "create", name, "postgresql", "postgresql",
                                            "img-1", "--active", "--version-number", "99.1"]})
    assert created["create"].silent
    registered = versions_of(project.member)[name]
    before = project.admin.datastores.get("postgresql").default_version
    try:
        assert registered.version == "99.1"
        shown = project.call("GET", f"/mgmt/datastore-versions/{registered.id}").json()["version"]
        assert (shown["active"], shown["offered"], shown["datastore_manager"], shown["image"]) == (
            True, False, "postgresql", "img-1")
        refused = mode.osc("member", {"create": ["datastore", "version", "create", f"{name}-m", "postgresql",
                                                 "postgresql", "img-1", "--active"]})["create"].err
        assert "Failed to create datastore version" in refused and "(HTTP 401)" in refused
        # no driver here runs it: refused when asked for, not left to fail later
        with pytest.raises(trove_errors.BadRequest, match="no compute driver here runs it"):
            project.member.instances.create("never", "d1", volume={"size": 1}, datastore="postgresql",
                                            datastore_version=name)
        # switched off: hidden from tenants, still the admins' to see
        assert mode.osc("admin", {"set": ["datastore", "version", "set", registered.id, "--disable"]})["set"].silent
        assert name not in versions_of(project.member) and name in versions_of(project.admin)
        assert fault(project.call("GET", f"/datastores/versions/{registered.id}", role="member"))[0] == 404
        with pytest.raises(trove_errors.BadRequest, match="is not active"):
            project.member.instances.create("never", "d1", volume={"size": 1}, datastore="postgresql",
                                            datastore_version=name)
        # the datastore's default: made this one, then none (Trove's default false), then the old one again
        project.admin.mgmt_ds_versions.edit(registered.id, default="true")
        assert project.admin.datastores.get("postgresql").default_version == registered.id
        project.admin.mgmt_ds_versions.edit(registered.id, default="false")
        assert "default_version" not in project.call("GET", "/datastores/postgresql").json()["datastore"]
    finally:
        project.admin.mgmt_ds_versions.edit(before, default="true")
        deleted = mode.osc("admin", {"delete": ["datastore", "version", "delete", registered.id]})["delete"]
        mode.close()
    assert deleted.silent and name not in versions_of(project.admin)


def test_registering_refuses_what_coffer_cannot_run_or_already_has(project):
    def create(**changes):
        body = {"version": {"name": f"r-{uuid.uuid4().hex[:6]}", "datastore_name": "postgresql",
                            "datastore_manager": "postgresql", "active": True, "image_tags": [], "packages": [],
                            **changes}}
        return project.call("POST", "/mgmt/datastore-versions", body)
    assert "not one Coffer's compute drivers run" in fault(create(datastore_manager="cassandra"))[2]
    assert fault(create(datastore_name="nosuch"))[:2] == (404, "itemNotFound")
    assert "already exists" in fault(create(name=installed_pg_version()))[2]
    assert fault(create(active="yes"))[0] == 400
    assert fault(project.call("POST", "/mgmt/datastore-versions", {"version": {}}, role="member"))[:2] == (
        401, "unauthorized")
    assert fault(project.call("DELETE", f"/mgmt/datastore-versions/{uuid.uuid4()}"))[:2] == (404, "itemNotFound")


def test_parameters_an_admin_adds_feed_configuration_groups_and_a_used_version_stays(project):
    name = f"par-{uuid.uuid4().hex[:6]}"
    assert project.call("POST", "/mgmt/datastore-versions", {"version": {
        "name": name, "datastore_name": "postgresql", "datastore_manager": "postgresql", "active": True,
        "packages": []}}).status_code == 202
    version_id = versions_of(project.admin)[name].id
    params = management.MgmtConfigurationParameters(project.admin)
    group = None
    try:
        params.create(version_id, "work_mem", 0, "integer", max_size=1024, min_size=64)
        params.create(version_id, "Custom_Flag", 1, "boolean")
        listed = {p.name: p for p in params.list_all_parameter_by_version(version_id)}
        assert set(listed) == {"work_mem", "Custom_Flag"}
        assert (listed["work_mem"].min, listed["work_mem"].max, listed["work_mem"].restart_required) == (
            64, 1024, False)
        # tenants see them through the ordinary parameter routes
        shown = project.member.configuration_parameters.get_parameter_by_version(version_id, "custom_flag")
        assert (shown.type, shown.restart_required) == ("boolean", True)
        params.modify(version_id, "work_mem", 0, "integer", max_size=2048, min_size=64)
        assert params.get_any_parameter_by_version(version_id, "work_mem").max == 2048
        # and configuration groups are checked against them
        with pytest.raises(trove_errors.UnprocessableEntity, match="greater than the maximum allowed: 2048"):
            project.member.configurations.create("too-big", json.dumps({"work_mem": 4096}), datastore="postgresql",
                                                 datastore_version=name)
        group = project.member.configurations.create("ok", json.dumps({"work_mem": 512}), datastore="postgresql",
                                                     datastore_version=name)
        # a version a configuration group uses is not deleted (Trove: 400)
        code, name_, message = fault(project.call("DELETE", f"/mgmt/datastore-versions/{version_id}"))
        assert (code, message) == (400, "Datastore version is in use by configuration.")
        deleted = project.call("DELETE", f"/mgmt/datastores/versions/{version_id}/parameters/Custom_Flag")
        assert deleted.status_code == 204
        with pytest.raises(trove_errors.NotFound):
            params.get_any_parameter_by_version(version_id, "Custom_Flag")
        with pytest.raises(trove_errors.UnprocessableEntity, match="not supported"):
            project.member.configurations.edit(group.id, json.dumps({"Custom_Flag": True}))
        bad = project.call("POST", f"/mgmt/datastores/versions/{version_id}/parameters",
                           {"configuration-parameter": {"name": "x", "restart_required": 0, "data_type": "list"}})
        assert fault(bad)[0] == 400
        member = project.call("GET", f"/mgmt/datastores/versions/{version_id}/parameters", role="member")
        assert fault(member)[:2] == (401, "unauthorized")
    finally:
        if group is not None:
            project.member.configurations.delete(group.id)
        assert project.call("DELETE", f"/mgmt/datastore-versions/{version_id}").status_code == 202
    assert name not in versions_of(project.admin)


def test_the_mysql_extension_takes_trove_s_json_format_suffix(project, instance):
    base = f"/instances/{instance.id}"

    def listed(collection: str) -> list:
        return project.call("GET", f"{base}/{collection}", role="member").json()[collection]
    assert project.call("POST", f"{base}/databases.json", {"databases": [{"name": "suffixed"}]},
                        role="member").status_code == 202
    wait_for(lambda: {"name": "suffixed"} in listed("databases"), 60, what="the database created")
    assert project.call("GET", f"{base}/databases.json", role="member").json() == {"databases": listed("databases")}
    assert project.call("POST", f"{base}/users.json", {"users": [{"name": "sufuser", "password": "S3cret-pass"}]},
                        role="member").status_code == 202
    wait_for(lambda: any(u["name"] == "sufuser" for u in listed("users")), 60, what="the user created")
    # a trailing name takes the suffix too: sufuser.json is the user sufuser
    assert project.call("GET", f"{base}/users/sufuser.json", role="member").json()["user"]["name"] == "sufuser"
    assert project.call("GET", f"{base}/users.json", role="member").json() == {"users": listed("users")}
    assert project.call("GET", f"{base}/root.json", role="member").json() == {"rootEnabled": False}
    assert project.call("DELETE", f"{base}/databases/suffixed.json", role="member").status_code == 202
    wait_for(lambda: {"name": "suffixed"} not in listed("databases"), 60, what="the database dropped")


def test_mgmt_guest_routes_show_root_history_hardware_diagnostics_and_ping(project, instance):
    history = project.admin.mgmt_instances.root_enabled_history(instance.id)
    assert (history.id, history.enabled, history.user) == (instance.id, "Never", "Nobody")
    project.member.root.create_instance_root(instance.id)
    history = project.admin.mgmt_instances.root_enabled_history(instance.id)
    assert history.enabled != "Never" and history.user not in ("Nobody", "")
    hw = diagnostics.HwInfoInterrogator(project.admin).get(instance.id)
    assert hw.hwinfo == {"mem_total": 512 * 1024, "num_cpus": 1}  # flavor d1
    wait_for(lambda: project.call("GET", f"/mgmt/instances/{instance.id}/rpc_ping").status_code == 204, 30,
             what="the agent's heartbeat")
    # the figures of a heartbeat sent while the engine still started may be the ones recorded yet
    figures = wait_for(lambda: (d := diagnostics.DiagnosticsInterrogator(project.admin).get(instance.id)).engine_up
                       and d, 30, what="diagnostics of the running engine")
    assert figures.vmRss > 0 and figures.engine_up is True and figures.role == "primary"
    upgrade = project.call("POST", f"/mgmt/instances/{instance.id}/upgrade", {"upgrade": {}})
    assert fault(upgrade)[:2] == (501, "notImplemented")
    for method, route in (("GET", "root"), ("GET", "hwinfo"), ("GET", "diagnostics"), ("GET", "rpc_ping"),
                          ("POST", "upgrade")):
        body = {"upgrade": {}} if method == "POST" else None
        assert fault(project.call(method, f"/mgmt/instances/{instance.id}/{route}", body, role="member"))[:2] == (
            401, "unauthorized")
        assert fault(project.call(method, f"/mgmt/instances/{uuid.uuid4()}/{route}", body))[:2] == (
            404, "itemNotFound")

