"""The instance views the API keeps in memory (services/api/instance_views.py) are
never staler than the database: a change another writer commits (another API
process, an operator's SQL) shows in the views; the caller's own change and one an
event brought show in the very next read; a kept view is shown to no one the
database read would have refused; without its LISTEN connection the API reads the
database. An in-process API on the run's PostgreSQL (the views are kept on
PostgreSQL only)."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timezone

import pytest

from plumbing.envelope import Event
from services.api.instance_views import LISTENER_NAME
from services.api.projections import Projections
from services.api.tables import instances

from tests.integration.conftest import OTHER, PROJECT, another_writer


@pytest.fixture
async def api(pg_api):
    pg_api.instance_id = await add_instance(pg_api.store, PROJECT, "first")
    await until(lambda: pg_api.app["instance_views"].listening, "the LISTEN connection")
    return pg_api


async def add_instance(store, project: str, name: str) -> str:
    instance_id, moment = str(uuid.uuid4()), datetime.now(timezone.utc)
    async with store.engine.begin() as conn:
        await conn.execute(instances.insert().values(
            id=instance_id, project_id=project, name=name, status="ACTIVE", operating_status="HEALTHY",
            flavor_id="d1", volume_gb=1, datastore="postgresql", datastore_version="15",
            datastore_version_number="15", created_at=moment, updated_at=moment))
    return instance_id


async def until(predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def get(api, path: str, project: str = PROJECT, role: str = "member", as_project: str | None = None):
    token = api.tokens[(as_project or project, role)]
    async with api.get(f"/v1.0/{project}{path}", headers={"X-Auth-Token": token}) as answer:
        return answer.status, await answer.json()


async def names(api) -> tuple[list[str], str | None]:
    """The names the list shows, and the name the show shows (None when 404)."""
    _, listing = await get(api, "/instances")
    status, shown = await get(api, f"/instances/{api.instance_id}")
    return [i["name"] for i in listing["instances"]], shown["instance"]["name"] if status == 200 else None


def kept(api, *path: str) -> bool:
    base = f"http://{api._base_url.host}:{api._base_url.port}"
    views = api.app["instance_views"]
    return all(views.get(("list", f"/v1.0/{PROJECT}{p}", base)) or views.get(("show", p.rsplit("/", 1)[-1], base))
               for p in path)


async def test_a_change_another_writer_commits_shows_in_the_kept_views(api):
    assert await names(api) == (["first"], "first")
    assert await names(api) == (["first"], "first")
    assert kept(api, "/instances", f"/instances/{api.instance_id}")  # what follows is about kept views

    await asyncio.to_thread(another_writer, api.store.engine.url,
                            f"UPDATE instances SET name = 'renamed-elsewhere' WHERE id = '{api.instance_id}'")
    await until(lambda: names_are(api, ["renamed-elsewhere"], "renamed-elsewhere"), "the rename to show")

    second = str(uuid.uuid4())
    await asyncio.to_thread(another_writer, api.store.engine.url, (
        "INSERT INTO instances (id, project_id, name, status, operating_status, flavor_id, volume_gb, datastore,"
        " datastore_version, datastore_version_number, failover_enabled, synchronous, created_at, updated_at) VALUES"
        f" ('{second}', '{PROJECT}', 'second', 'BUILD', '', 'd1', 1, 'postgresql', '15', '15', false, false, now(), now())"))
    await until(lambda: names_are(api, ["second", "renamed-elsewhere"], "renamed-elsewhere"), "the new instance")

    await asyncio.to_thread(another_writer, api.store.engine.url,
                            f"DELETE FROM instances WHERE id = '{api.instance_id}'")
    await until(lambda: names_are(api, ["second"], None), "the deletion to show")


async def names_are(api, listed: list[str], shown: str | None) -> bool:
    return await names(api) == (listed, shown)


async def test_the_callers_own_change_and_an_events_show_in_the_next_read(api):
    assert await names(api) == (["first"], "first")
    assert kept(api, "/instances", f"/instances/{api.instance_id}")
    async with api.put(f"/v1.0/{PROJECT}/instances/{api.instance_id}", json={"instance": {"name": "renamed"}},
                       headers={"X-Auth-Token": api.tokens[(PROJECT, "member")]}) as answer:
        assert answer.status == 202
    assert await names(api) == (["renamed"], "renamed")  # no waiting: read-your-writes

    _, shown = await get(api, f"/instances/{api.instance_id}")
    assert shown["instance"]["status"] == "ACTIVE"
    await Projections(api.store).handle(Event("coffer.instance.failed.v1", api.instance_id, data={
        "instance_id": api.instance_id, "operation": "restart", "message": "the engine did not start",
        "details": ""}))
    _, shown = await get(api, f"/instances/{api.instance_id}")
    assert shown["instance"]["status"] == "ERROR" and shown["instance"]["fault"]["message"] == \
        "the engine did not start"
    _, listing = await get(api, "/instances")
    assert listing["instances"][0]["status"] == "ERROR"


async def test_a_kept_view_is_shown_only_to_whom_the_database_would_show_it(api):
    path = f"/instances/{api.instance_id}"
    status, by_admin = await get(api, path, project=OTHER, role="admin")  # Trove's admins reach any id
    assert status == 200 and by_admin["instance"]["name"] == "first"
    status_again, _ = await get(api, path, project=OTHER, role="admin")
    assert status_again == 200 and api.app["instance_views"].get(
        ("show", api.instance_id, f"http://{api._base_url.host}:{api._base_url.port}"))

    status, refused = await get(api, path, project=OTHER, role="member")
    unknown_status, unknown = await get(api, "/instances/00000000-0000-4000-8000-000000000000",
                                        project=OTHER, role="member")
    assert (status, unknown_status) == (404, 404)
    assert refused["itemNotFound"]["message"] == f"Instance {api.instance_id} could not be found."
    assert set(refused) == set(unknown)
    status, _ = await get(api, path)
    assert status == 200
    _, other_list = await get(api, "/instances", project=OTHER, role="admin")
    assert other_list["instances"] == []


async def test_without_its_listen_connection_the_api_reads_the_database(api):
    views = api.app["instance_views"]
    assert await names(api) == (["first"], "first")
    await asyncio.to_thread(another_writer, api.store.engine.url,
                            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            f"WHERE application_name = '{LISTENER_NAME}' AND datname = current_database()")
    await until(lambda: not views.listening, "the lost connection to be noticed")
    assert views.get(("list", f"/v1.0/{PROJECT}/instances", "any")) is None
    await asyncio.to_thread(another_writer, api.store.engine.url,
                            f"UPDATE instances SET name = 'renamed-unheard' WHERE id = '{api.instance_id}'")
    assert await names(api) == (["renamed-unheard"], "renamed-unheard")  # read from the database
    await until(lambda: views.listening, "the LISTEN connection to come back")
    assert await names(api) == (["renamed-unheard"], "renamed-unheard")


async def test_a_replica_another_writer_adds_in_another_project_shows_on_its_primary(api):
    path = f"/instances/{api.instance_id}"
    _, shown = await get(api, path)
    assert "replicas" not in shown["instance"]
    assert kept(api, path)
    replica = str(uuid.uuid4())
    await asyncio.to_thread(another_writer, api.store.engine.url, (
        "INSERT INTO instances (id, project_id, name, status, operating_status, flavor_id, volume_gb, datastore,"
        " datastore_version, datastore_version_number, failover_enabled, synchronous, created_at, updated_at,"
        f" replica_of_id) VALUES ('{replica}', '{OTHER}', 'replica', 'BUILD', '', 'd1', 1, 'postgresql', '15', '15',"
        f" false, false, now(), now(), '{api.instance_id}')"))

    async def replicas_shown():
        _, shown = await get(api, path)
        return [r["id"] for r in shown["instance"].get("replicas", [])] == [replica]
    await until(replicas_shown, "the replica on its primary")
