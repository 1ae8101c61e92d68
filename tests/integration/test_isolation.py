"""Tenant isolation, driven by the served OpenAPI document: every route any route
group describes is tried by two projects' admin, member and reader tokens.

Project A owns real resources (an ACTIVE PostgreSQL instance with a database and a
user, a webhook subscription, and a backup and a configuration group when those
routes exist); the value of every other path parameter is found by listing its
parent collection as A. Then:
- any token of project B on a URL of project A: 403, Trove's forbidden body;
- B's member and reader on B's URL with A's ids: the answer is a denial and cannot
  be told from the answer for ids that do not exist (same status, same fault):
  nothing about A's resources leaks, nothing is done to them;
- B's lists and counts never contain A's resources; B's admin reads A's instance by
  id (Trove's admins do) but lists only its own project outside the mgmt routes;
- inside A: the reader is refused every mutating route (403), the member every
  mgmt route (Trove's 401) except showing its own quota.
Resources other projects can list too (flavors, datastores) are shared, not A's."""
from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest
import requests

from tests.conftest import trove, wait_for
from tests.e2e.support import installed_pg_version, wait_active, wait_gone

pytestmark = pytest.mark.e2e

V = "/v1.0/{project}"
PARAM = re.compile(r"{([^}]+)}")
MADE_UP = "00000000-0000-4000-8000-00000000beef"
# request bodies of Trove's documented shapes (reference §4), so a route gets past body
# validation to the lookup of the resource; a route not listed gets its document's
# example, if any, or an empty object
BODIES = {
    ("post", f"{V}/instances/{{instance}}/action"): {"restart": {}},
    ("put", f"{V}/instances/{{instance}}"): {"instance": {"name": "renamed-by-b"}},
    ("patch", f"{V}/instances/{{instance}}"): {"instance": {"name": "renamed-by-b"}},
    ("post", f"{V}/instances/{{instance}}/databases"): {"databases": [{"name": "fromb"}]},
    ("post", f"{V}/instances/{{instance}}/users"): {"users": [{"name": "fromb", "password": "Secret-b1"}]},
    ("put", f"{V}/instances/{{instance}}/users"): {"users": [{"name": "app", "password": "Secret-b1"}]},
    ("put", f"{V}/instances/{{instance}}/users/{{user}}"): {"user": {"password": "Secret-b1"}},
    ("put", f"{V}/instances/{{instance}}/users/{{user}}/databases"): {"databases": [{"name": "appdb"}]},
    ("post", f"{V}/instances/{{instance}}/root"): {},
    ("post", f"{V}/instances/{{instance}}/log"): {"name": "general"},
    ("post", f"{V}/instances/{{instance}}/schedules"): {"schedule": {"action": "stop", "cron": "0 0 1 1 *"}},
    ("post", f"{V}/backups"): {"backup": {"name": "from-b", "instance": "{instance}"}},
    ("post", f"{V}/configurations"): {"configuration": {"name": "from-b", "values": {}}},
    ("patch", f"{V}/configurations/{{configuration}}"): {"configuration": {"values": {}}},
    ("put", f"{V}/configurations/{{configuration}}"): {"configuration": {"values": {}}},
    ("patch", f"{V}/subscriptions/{{subscription}}"): {"subscription": {"enabled": False}},
    ("post", f"{V}/mgmt/instances/{{instance}}/action"): {"reboot": {}},
    ("put", f"{V}/mgmt/quotas/{{target}}"): {"quotas": {"instances": 99}},
}


def route_params(path: str) -> list[str]:
    return [p for p in PARAM.findall(path) if p != "project"]


def fill(template, values: dict):
    """`template` (a path or a body) with {name} replaced by values[name]."""
    if isinstance(template, str):
        return PARAM.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


class Tenant:
    def __init__(self, stack, name: str):
        from coffer.cli import _create_token
        self.api = stack.api_url
        self.project = f"{name}-{uuid.uuid4().hex[:6]}"
        self.tokens = {role: asyncio.run(_create_token(self.project, role)) for role in ("admin", "member", "reader")}

    def call(self, role: str, method: str, path: str, body=None, project: str | None = None):
        url = self.api + path.replace("{project}", project or self.project)
        return requests.request(method.upper(), url, headers={"X-Auth-Token": self.tokens[role]},
                                json=body if method != "get" else None, timeout=30)


@pytest.fixture(scope="module")
def doc(stack):
    return requests.get(f"{stack.api_url}/openapi.json", timeout=10).json()


@pytest.fixture(scope="module")
def routes(doc):
    """(method, path) of every tenant route of the document; deletes last."""
    found = [(m, p) for p, ops in doc["paths"].items() if p.startswith(V) for m in ops]
    return sorted(found, key=lambda r: (r[0] == "delete", r[1], r[0]))


@pytest.fixture(scope="module")
def tenants(stack, doc):
    a, b = Tenant(stack, "iso-a"), Tenant(stack, "iso-b")
    client = trove(stack, a.tokens["member"], a.project)
    inst = client.instances.create("iso-a-pg", "d1", volume={"size": 1}, datastore="postgresql",
                                   datastore_version=installed_pg_version(), databases=[{"name": "appdb"}],
                                   users=[{"name": "app", "password": "S3cret-pass",
                                           "databases": [{"name": "appdb"}]}])
    wait_active(client, inst.id)
    values = {"instance": inst.id, "target": a.project}
    sub = a.call("member", "post", f"{V}/subscriptions", {"subscription": {"url": "http://127.0.0.1:9/hook"}})
    assert sub.status_code == 200, sub.text
    values["subscription"] = sub.json()["subscription"]["id"]
    paths = doc["paths"]
    if "post" in paths.get(f"{V}/configurations", {}):
        a.call("member", "post", f"{V}/configurations", {"configuration": {
            "name": "iso-a-config", "values": {},
            "datastore": {"type": "postgresql", "version": installed_pg_version()}}})
    schedules = f"{V}/instances/{{instance}}/schedules"
    if "post" in paths.get(schedules, {}):
        made = a.call("member", "post", fill(schedules, values), {"schedule": {"action": "stop", "cron": "0 0 1 1 *"}})
        assert made.status_code == 200, made.text
    if "post" in paths.get(f"{V}/backups", {}):
        made = a.call("member", "post", f"{V}/backups", {"backup": {"name": "iso-a-backup", "instance": inst.id}})
        assert made.status_code == 202, made.text
        # the instance shows BACKUP (and lists no databases or users) until its backup ends
        wait_for(lambda: client.instances.get(inst.id).status == "ACTIVE", 120, what="the backup to end")
    a.values, a.owned = values, {inst.id, values["subscription"]}
    assert len([r for p in paths if p.startswith(V) for r in paths[p]]) >= 20  # the document drives the matrix
    yield a, b
    client.instances.delete(inst.id)
    wait_gone(client, inst.id, timeout=60)


def first_id(body) -> str | None:
    for value in (body or {}).values():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            item = value[0]
            return item.get("id") or item.get("name")
    return None


@pytest.fixture(scope="module")
def resolved(tenants, routes):
    """A's value for every path parameter that has one, and which values are A's
    own (B cannot list them) rather than shared (flavors, datastores)."""
    a, b = tenants
    values, owned = dict(a.values), {*a.owned, a.project}
    listable = {p for m, p in routes if m == "get"}
    for path in sorted(listable, key=lambda p: p.count("/")):
        for name in route_params(path):
            parent = path[:path.index("{" + name + "}")].rstrip("/")
            if name in values or parent not in listable or any(n not in values for n in route_params(parent)):
                continue
            listed = a.call("admin", "get", fill(parent, values))
            value = first_id(listed.json()) if listed.ok else None
            if value is not None:
                values[name] = value
                if value not in b.call("admin", "get", fill(parent, values)).text:
                    owned.add(value)
    # a parameter no listing gives a value for (clusters: there are none) names a made-up resource
    for name in {n for _m, p in routes for n in route_params(p)} - set(values):
        values[name] = MADE_UP
    return values, owned


def fault_name(response) -> str:
    try:
        return next(iter(response.json()))
    except (ValueError, StopIteration, TypeError):
        return ""


def own(method: str, path: str, values: dict, owned: set) -> bool:
    """Whether the request names a resource of A's (not a shared one), in its path or its body."""
    names = route_params(path) + PARAM.findall(json.dumps(BODIES.get((method, path), {})))
    return any(values.get(n) in owned for n in names)


def body_for(method: str, path: str, doc: dict, values: dict):
    if method in ("get", "delete"):
        return None
    if (method, path) in BODIES:
        return fill(BODIES[(method, path)], values)
    content = doc["paths"][path][method].get("requestBody", {}).get("content", {}).get("application/json", {})
    return content.get("example", {})


def test_every_route_on_another_projects_url_is_403(tenants, routes, resolved, doc):
    a, b = tenants
    values, _owned = resolved
    failures = []
    for method, path in routes:
        for role in ("admin", "member", "reader"):
            answer = b.call(role, method, fill(path, values), body_for(method, path, doc, values), project=a.project)
            if answer.status_code != 403 or fault_name(answer) != "forbidden" or b.project not in answer.text:
                failures.append(f"{role} {method.upper()} {path}: {answer.status_code} {answer.text[:150]}")
    assert not failures, "\n".join(failures)


def test_other_projects_ids_look_like_ids_that_do_not_exist(tenants, routes, resolved, doc):
    a, b = tenants
    values, owned = resolved
    made_up = {n: (MADE_UP if isinstance(v, str) and len(v) >= 32 else f"nosuch{uuid.uuid4().hex[:6]}")
               for n, v in values.items()}
    made_up["target"] = f"nosuch-project-{uuid.uuid4().hex[:6]}"
    failures, checked = [], 0
    for method, path in routes:
        if not own(method, path, values, owned):
            continue
        for role in ("member", "reader"):
            real = b.call(role, method, fill(path, values), body_for(method, path, doc, values))
            fake = b.call(role, method, fill(path, made_up), body_for(method, path, doc, made_up))
            checked += 1
            if real.status_code < 400 or (real.status_code, fault_name(real)) != (fake.status_code, fault_name(fake)):
                failures.append(f"{role} {method.upper()} {path}: A's ids {real.status_code} {real.text[:120]} / "
                                f"made-up ids {fake.status_code} {fake.text[:120]}")
            if a.project in real.text or any(str(v) in real.text for v in owned if len(str(v)) >= 32
                                              and str(v) not in fill(path, values)):
                failures.append(f"{role} {method.upper()} {path} names A's resources: {real.text[:200]}")
    assert checked, "no route names a resource of A's"
    assert not failures, "\n".join(failures)
    # A's own instance is untouched by all that
    shown = a.call("reader", "get", f"{V}/instances/{values['instance']}").json()["instance"]
    assert shown["name"] == "iso-a-pg" and shown["status"] not in ("ERROR", "SHUTDOWN")


def test_lists_and_counts_of_b_never_contain_a(tenants, routes, resolved):
    a, b = tenants
    values, owned = resolved
    long_ids = {str(v) for v in owned if len(str(v)) >= 32}
    failures = []
    for method, path in routes:
        if method != "get" or own(method, path, values, owned) or "/mgmt/" in path:
            continue
        concrete = fill(path, {**values, "target": b.project})
        for role in ("admin", "member", "reader"):
            answer = b.call(role, "get", concrete)
            leaked = [v for v in long_ids if v in answer.text] + ([a.project] if a.project in answer.text else [])
            if leaked or answer.status_code >= 500:
                failures.append(f"{role} GET {path}: {answer.status_code} leaks {leaked}")
    assert not failures, "\n".join(failures)
    quotas = {q["resource"]: q["in_use"] for q in b.call("member", "get", f"{V}/mgmt/quotas/{b.project}").json()["quotas"]}
    assert quotas["instances"] == 0 and quotas["volumes"] == 0
    assert {q["resource"]: q["in_use"] for q in a.call("member", "get", f"{V}/mgmt/quotas/{a.project}")
            .json()["quotas"]}["instances"] == 1


def test_an_admin_reads_another_projects_instance_by_id_and_through_mgmt(tenants, resolved):
    a, b = tenants
    values, _ = resolved
    shown = b.call("admin", "get", f"{V}/instances/{values['instance']}")
    assert shown.status_code == 200 and shown.json()["instance"]["id"] == values["instance"]
    assert b.call("member", "get", f"{V}/instances/{values['instance']}").status_code == 404
    listed = b.call("admin", "get", f"{V}/mgmt/instances?project_id={a.project}").json()["instances"]
    assert [i["id"] for i in listed] == [values["instance"]] and listed[0]["tenant_id"] == a.project
    assert values["instance"] not in b.call("admin", "get", f"{V}/instances").text


def test_inside_a_project_the_reader_only_reads_and_the_member_has_no_mgmt(tenants, routes, resolved, doc):
    a, _b = tenants
    values, _ = resolved
    failures = []
    for method, path in routes:
        concrete, body = fill(path, values), body_for(method, path, doc, values)
        if method != "get":
            answer = a.call("reader", method, concrete, body)
            if (answer.status_code, fault_name(answer)) != (403, "forbidden"):
                failures.append(f"reader {method.upper()} {path}: {answer.status_code} {answer.text[:150]}")
        if "/mgmt/" in path:
            answer = a.call("member", method, concrete, body)
            expected = (200, "quotas") if (method, path) == ("get", f"{V}/mgmt/quotas/{{target}}") else (
                401, "unauthorized")
            if (answer.status_code, fault_name(answer)) != expected:
                failures.append(f"member {method.upper()} {path}: {answer.status_code} {answer.text[:150]}")
    assert not failures, "\n".join(failures)
    # the reader reads every route that names A's resources
    unreadable = [f"GET {p}: {r.status_code}" for m, p in routes if m == "get" and "{instance}" in p
                  and "/mgmt/" not in p for r in [a.call("reader", "get", fill(p, values))] if r.status_code in (401, 403)]
    assert not unreadable, unreadable
