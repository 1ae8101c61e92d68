"""Trove's pagination of instances (reference §1): pages of at most 20 ordered by
id, `marker` = the last id seen, a `links` rel next (https, the same URL with the
new marker) only when another page exists, bad limits refused; the mgmt list pages
the same way across projects; query booleans in any case. Rows are inserted
straight into an in-process API's database (tests/integration/conftest.py)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from yarl import URL

from services.api.tables import instances


async def add_instances(store, project: str, count: int) -> list[str]:
    base = datetime.now(timezone.utc)
    rows = [dict(id=str(uuid.uuid4()), project_id=project, name=f"i{n}", status="ACTIVE", operating_status="HEALTHY",
                 flavor_id="d1", volume_gb=1, datastore="postgresql", datastore_version="15",
                 datastore_version_number="15", created_at=base + timedelta(seconds=n), updated_at=base)
            for n in range(count)]
    async with store.engine.begin() as conn:
        await conn.execute(instances.insert(), rows)
    return sorted(r["id"] for r in rows)


@pytest.fixture
async def api(inprocess_api):
    async with inprocess_api() as served:
        served.ids = await add_instances(served.store, "paged", 45)
        await add_instances(served.store, "elsewhere", 3)
        served.headers = {"X-Auth-Token": await served.token("paged")}
        served.admin = {"X-Auth-Token": await served.token("paged", "admin")}
        yield served


async def get(api, path: str, headers=None):
    async with api.session.get(path, headers=headers or api.headers) as answer:
        return answer.status, await answer.json()


async def test_pages_follow_the_marker_and_the_last_has_no_next_link(api):
    seen, path = [], "/v1.0/paged/instances/detail?include_clustered=False"
    pages = 0
    while path:
        status, body = await get(api, path)
        assert status == 200 and len(body["instances"]) <= 20
        page = body["instances"]
        assert [i["created"] for i in page] == sorted((i["created"] for i in page), reverse=True)  # newest first
        seen += [i["id"] for i in page]
        pages += 1
        links = body.get("links")
        if links:
            [link] = links
            url = URL(link["href"])
            assert link["rel"] == "next" and url.scheme == "https" and url.query["marker"] == max(i["id"] for i in page)
            assert url.query["include_clustered"] == "False"
            path = url.path_qs
        else:
            path = None
    assert pages == 3 and sorted(seen) == api.ids  # every instance once, none of another project


async def test_limit_is_capped_and_checked(api):
    status, body = await get(api, "/v1.0/paged/instances?limit=5")
    assert len(body["instances"]) == 5 and URL(body["links"][0]["href"]).query["marker"] == api.ids[4]
    status, body = await get(api, "/v1.0/paged/instances/detail?limit=500")
    assert len(body["instances"]) == 20 and "created" in body["instances"][0]
    status, body = await get(api, f"/v1.0/paged/instances?marker={api.ids[39]}")
    assert sorted(i["id"] for i in body["instances"]) == api.ids[40:]
    assert "links" not in body
    for bad in ("abc", "0", "-1"):
        status, body = await get(api, f"/v1.0/paged/instances?limit={bad}")
        assert status == 400 and "badRequest" in body


async def test_the_mgmt_list_pages_across_projects_and_filters_by_project(api):
    status, body = await get(api, "/v1.0/paged/mgmt/instances?deleted=FALSE&limit=20", api.admin)
    assert status == 200 and len(body["instances"]) == 20 and body["links"]
    status, body = await get(api, "/v1.0/paged/mgmt/instances?project_id=elsewhere", api.admin)
    assert {i["tenant_id"] for i in body["instances"]} == {"elsewhere"} and len(body["instances"]) == 3
    status, body = await get(api, "/v1.0/paged/mgmt/instances?deleted=True", api.admin)
    assert body == {"instances": []}  # deleted instances are not kept
    status, body = await get(api, "/v1.0/paged/mgmt/instances")
    assert status == 401 and body["unauthorized"]["message"] == "User does not have admin privileges."
