"""Keystone mode against a real Keystone (tests/keystone.py): the API registers
itself in the catalog as service type `database`, takes project, user and roles
from Keystone's answer, caches each validation, and logs in again when Keystone
stops accepting its service token."""
from __future__ import annotations

import pytest
import requests
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from troveclient import exceptions as trove_exc
from troveclient.v1 import client as trove_client

from tests.conftest import RUN_ID, wait_for

pytestmark = pytest.mark.e2e


def password_session(keystone, role: str) -> ks_session.Session:
    auth = v3.Password(auth_url=keystone.url, username=f"{role}-{RUN_ID}", password=f"{role}-secret",
                       project_id=keystone.tenant, user_domain_id="default", project_domain_id="default")
    return ks_session.Session(auth=auth)


def catalog_client(keystone, role: str):
    """python-troveclient finding the API in Keystone's catalog, as OpenStack tooling does."""
    return trove_client.Client(session=password_session(keystone, role))


def test_the_api_is_in_the_catalog_as_the_database_service(keystone, keystone_api):
    token = keystone.token(f"member-{RUN_ID}", "member-secret", f"coffer-{RUN_ID}")
    [database] = [s for s in keystone.catalog(token) if s["type"] == "database"]
    assert database["name"] == "trove"
    urls = {e["interface"]: e["url"] for e in database["endpoints"]}
    assert urls == {"public": f"{keystone_api}/v1.0/{keystone.tenant}", "internal": f"{keystone_api}/v1.0/{keystone.tenant}"}
    endpoint = password_session(keystone, "member").get_endpoint(service_type="database", interface="public")
    assert endpoint == f"{keystone_api}/v1.0/{keystone.tenant}"


def test_project_and_roles_come_from_keystone(keystone, keystone_api):
    member, reader = catalog_client(keystone, "member"), catalog_client(keystone, "reader")
    assert {f.str_id for f in member.flavors.list()} >= {"d1", "d2", "d3", "d4"}
    assert member.instances.list() == []
    with pytest.raises(trove_exc.Forbidden):  # a reader reads only
        reader.instances.create("nope", "d1", volume={"size": 1}, datastore="postgresql")
    with pytest.raises(trove_exc.Unauthorized):  # mgmt is for admins
        member.mgmt_instances.list()
    admin = catalog_client(keystone, "admin")
    assert isinstance(admin.mgmt_instances.list(), list)
    quotas = {q.resource: q.limit for q in admin.quota.show(keystone.tenant)}
    assert reader.limits.list()[0].max_instances == quotas["instances"]  # the same project, seen by both


def test_bad_tokens_and_other_projects_are_refused_as_trove_does(keystone, keystone_api):
    url = f"{keystone_api}/v1.0/{keystone.tenant}/instances"
    forged = requests.get(url, headers={"X-Auth-Token": "gAAAAAforged"}, timeout=10)
    assert forged.status_code == 401 and "unauthorized" in forged.json()
    token = keystone.token(f"member-{RUN_ID}", "member-secret", f"coffer-{RUN_ID}")
    other = requests.get(f"{keystone_api}/v1.0/someone-else/instances", headers={"X-Auth-Token": token}, timeout=10)
    assert other.status_code == 403
    assert other.json()["forbidden"]["message"] == f"User with tenant id {keystone.tenant} cannot access this resource."
    # a built-in token means nothing to a Keystone-mode API
    from coffer.cli import _create_token
    import asyncio
    builtin = asyncio.run(_create_token(keystone.tenant, "admin"))
    assert requests.get(url, headers={"X-Auth-Token": builtin}, timeout=10).status_code == 401


def test_a_token_is_validated_once_then_served_from_the_cache(keystone, keystone_api):
    token = keystone.token(f"reader-{RUN_ID}", "reader-secret", f"coffer-{RUN_ID}")
    before = keystone.requests_seen("GET", "/auth/tokens")
    for _ in range(20):
        answer = requests.get(f"{keystone_api}/v1.0/{keystone.tenant}/flavors", headers={"X-Auth-Token": token},
                              timeout=10)
        assert answer.status_code == 200
    assert keystone.requests_seen("GET", "/auth/tokens") - before == 1


def test_the_api_logs_in_again_when_keystone_revokes_its_service_token(keystone, keystone_api):
    # an admin's password reset revokes every token of the user: the API's service
    # token too; the password stays the one the API is configured with
    [coffer] = keystone.admin("GET", "/users?name=coffer")["users"]
    logins_before = keystone.requests_seen("POST", "/auth/tokens")
    keystone.admin("PATCH", f"/users/{coffer['id']}", {"user": {"password": "coffer-service-secret"}})
    token = keystone.token(f"member-{RUN_ID}", "member-secret", f"coffer-{RUN_ID}")  # not in the API's cache
    answer = requests.get(f"{keystone_api}/v1.0/{keystone.tenant}/instances", headers={"X-Auth-Token": token},
                          timeout=10)
    assert answer.status_code == 200, answer.text
    # the member's login above, and the API's own new login(s); gunicorn writes its
    # access log after each answer, so the last line may come a moment later
    wait_for(lambda: keystone.requests_seen("POST", "/auth/tokens") - logins_before >= 2, 10,
             what="the API's new login in Keystone's access log")
