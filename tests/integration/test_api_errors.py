"""Bad input gets Trove's error bodies and status codes, and creates nothing."""
from __future__ import annotations

import pytest
import requests

from tests.e2e.support import installed_pg_version

pytestmark = pytest.mark.e2e


@pytest.fixture
def api(stack):
    base = f"{stack.api_url}/v1.0/{stack.project}"

    def call(method, path, token=None, **kw):
        headers = {"X-Auth-Token": token or stack.member_token, **kw.pop("headers", {})}
        return requests.request(method, base + path, headers=headers, timeout=10, **kw)
    return call


def instance_count(api) -> int:
    return len(api("GET", "/instances").json()["instances"])


def fault(response, name: str, code: int) -> str:
    assert response.status_code == code, response.text
    body = response.json()
    assert list(body) == [name] and body[name]["code"] == code
    return body[name]["message"]


def good_body(**overrides) -> dict:
    body = {"name": "x", "flavorRef": "d1", "volume": {"size": 1},
            "datastore": {"type": "postgresql", "version": installed_pg_version()}}
    body.update(overrides)
    return {"instance": body}


@pytest.mark.parametrize("overrides, fragment", [
    ({"flavorRef": "nope"}, "Flavor nope could not be found"),
    ({"volume": None}, "Volume size was not specified"),
    ({"volume": {"size": 0}}, "volume"),
    ({"name": ""}, "name"),
    ({"datastore": {"type": "postgresql", "version": "0.1"}}, "Datastore version '0.1' cannot be found"),
    ({"databases": [{"name": "a"}, {"name": "a"}]}, "more than once"),
    ({"databases": [{"name": "postgres"}]}, "reserved"),
    ({"users": [{"name": "u"}]}, "needs a password"),
    ({"users": [{"name": "u", "password": "p", "databases": [{"name": "other"}]}]}, "not in the instance's databases"),
])
def test_invalid_create_is_400_and_creates_nothing(api, overrides, fragment):
    before = instance_count(api)
    message = fault(api("POST", "/instances", json=good_body(**overrides)), "badRequest", 400)
    assert fragment in message
    assert instance_count(api) == before


@pytest.mark.parametrize("path, body", [
    ("/backups", {"backup": {"name": "b", "instance": "x", "colour": "red"}}),
    ("/backup_strategies", {"backup_strategy": {"swift_container": "c", "colour": "red"}}),
])
def test_unexpected_attributes_are_400_naming_them(api, path, body):
    key = next(iter(body))
    assert fault(api("POST", path, json=body), "badRequest", 400) == (
        f"Validation error: {key} has unexpected attributes ['colour'].")


def test_unknown_datastore_is_404(api):
    fault(api("POST", "/instances", json=good_body(datastore={"type": "nosuchdb"})), "itemNotFound", 404)


def test_malformed_and_missing_bodies(api):
    fault(api("POST", "/instances", data="{not json", headers={"Content-Type": "application/json"}),
          "badRequest", 400)
    fault(api("POST", "/instances"), "badRequest", 400)
    assert api("POST", "/instances", data="x", headers={"Content-Type": "text/plain"}).status_code == 415


def test_unknown_ids_are_404(api):
    fault(api("GET", "/instances/00000000-0000-0000-0000-000000000000"), "itemNotFound", 404)
    fault(api("DELETE", "/instances/nope"), "itemNotFound", 404)
    fault(api("GET", "/flavors/nope"), "itemNotFound", 404)
    fault(api("GET", "/datastores/nope"), "itemNotFound", 404)
    fault(api("GET", "/datastores/nope/versions/nope/flavors"), "itemNotFound", 404)
    fault(api("GET", "/datastores/postgresql/versions/nope/flavors"), "itemNotFound", 404)
    fault(api("GET", "/no-such-collection"), "itemNotFound", 404)


def test_tokens_and_project_scoping(api, stack):
    fault(api("GET", "/instances", token="cft_forged"), "unauthorized", 401)
    other = requests.get(f"{stack.api_url}/v1.0/someone-else/instances",
                         headers={"X-Auth-Token": stack.member_token}, timeout=10)
    message = fault(other, "forbidden", 403)
    assert stack.project in message


def test_reader_cannot_create(api, stack):
    import asyncio

    from coffer.cli import _create_token
    reader = asyncio.run(_create_token(stack.project, "reader"))
    assert api("GET", "/instances", token=reader).status_code == 200
    fault(api("POST", "/instances", token=reader, json=good_body()), "forbidden", 403)


def test_versions_document_needs_no_token(stack):
    body = requests.get(stack.api_url + "/", timeout=10).json()
    assert body["versions"][0]["id"] == "v1.0"


def test_redis_has_no_databases_and_mysql_names_follow_mysql_rules(api):
    def body(datastore, **overrides):
        versions = api("GET", f"/datastores/{datastore}/versions").json()["versions"]
        return {"instance": {"name": "x", "flavorRef": "d1", "volume": {"size": 1},
                             "datastore": {"type": datastore, "version": versions[0]["name"]}, **overrides}}
    before = instance_count(api)
    message = fault(api("POST", "/instances", json=body("redis", databases=[{"name": "db"}])), "badRequest", 400)
    assert "not applicable to redis" in message
    fault(api("POST", "/instances", json=body("mysql", databases=[{"name": "information_schema"}])),
          "badRequest", 400)
    fault(api("POST", "/instances", json=body("mysql", users=[{"name": "u" * 33, "password": "p"}])),
          "badRequest", 400)
    assert instance_count(api) == before


def test_a_body_past_the_size_limit_is_413_in_trove_shape(api):
    before = instance_count(api)
    fault(api("POST", "/instances", data=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"}),
          "overLimit", 413)
    fault(api("POST", "/instances", data="\udcff".encode("utf-8", "surrogatepass"),
              headers={"Content-Type": "application/json"}), "badRequest", 400)
    assert instance_count(api) == before


# -- configuration groups, resize, upgrade ---------------------------------------------------

def group_body(**overrides) -> dict:
    body = {"name": "g", "values": {"max_connections": 50},
            "datastore": {"type": "postgresql", "version": installed_pg_version()}}
    body.update(overrides)
    return {"configuration": body}


@pytest.mark.parametrize("overrides, name, code, fragment", [
    ({"name": ""}, "badRequest", 400, "configuration['name']"),
    ({"values": None}, "unprocessableEntity", 422, "must be an object"),
    ({"values": {"max_connections": "many"}}, "unprocessableEntity", 422, "max_connections"),
    ({"datastore": {"type": "nosuchdb"}}, "itemNotFound", 404, "nosuchdb"),
    ({"datastore": {"type": "postgresql", "version": "0.1"}}, "badRequest", 400, "0.1"),
])
def test_bad_group_bodies(api, overrides, name, code, fragment):
    before = len(api("GET", "/configurations").json()["configurations"])
    assert fragment in fault(api("POST", "/configurations", json=group_body(**overrides)), name, code)
    assert len(api("GET", "/configurations").json()["configurations"]) == before


def test_unknown_groups_and_instances_are_404(api):
    missing = "00000000-0000-0000-0000-000000000000"
    for method, path in [("GET", f"/configurations/{missing}"), ("DELETE", f"/configurations/{missing}"),
                         ("GET", f"/configurations/{missing}/instances"),
                         ("GET", f"/instances/{missing}/configuration")]:
        fault(api(method, path), "itemNotFound", 404)
    fault(api("PATCH", f"/configurations/{missing}", json={"configuration": {"values": {}}}), "itemNotFound", 404)
    fault(api("POST", f"/instances/{missing}/action", json={"resize": {"flavorRef": "d2"}}), "itemNotFound", 404)
    fault(api("PATCH", f"/instances/{missing}", json={"instance": {"datastore_version": "15"}}), "itemNotFound", 404)


def test_a_group_is_merged_replaced_and_deleted(api):
    created = api("POST", "/configurations", json=group_body(description="first")).json()["configuration"]
    assert (created["instance_count"], created["values"], created["description"]) == (0, {"max_connections": 50},
                                                                                      "first")
    path = f"/configurations/{created['id']}"
    patched = api("PATCH", path, json={"configuration": {"values": {"work_mem": "4MB"}}})
    assert (patched.status_code, patched.text) == (200, "")
    assert api("GET", path).json()["configuration"]["values"] == {"max_connections": 50, "work_mem": "4MB"}
    put = api("PUT", path, json={"configuration": {"values": {"jit": False}, "name": "renamed"}})
    assert put.status_code == 202
    shown = api("GET", path).json()["configuration"]
    assert (shown["name"], shown["values"], shown["description"]) == ("renamed", {"jit": False}, "first")
    fault(api("PUT", path, json={"configuration": {"values": {"jit": "no"}}}), "unprocessableEntity", 422)
    assert api("GET", path).json()["configuration"]["values"] == {"jit": False}
    assert api("DELETE", path).status_code == 202
    fault(api("GET", path), "itemNotFound", 404)
