"""A datastore's default version: the newest version the drivers offer, until an
administrator picks one (or none); the drivers' offers, sent again each time a
provisioner starts, leave that choice alone. (In-process API, no bus: the offers are
fed to its projection as the provisioner's events would be.)"""
from __future__ import annotations

from plumbing.envelope import Event
from services.api.projections import Projections

PROJECT = "defaults-project"


def offered(version: str) -> Event:
    return Event("coffer.datastore.version_available.v1", f"postgresql:{version}", {
        "datastore": "postgresql", "version": version, "version_number": f"{version}.1", "driver": "local",
        "manager": "postgresql"}, source="provisioner")


async def a_provisioner_starts(api, versions=("15", "16")) -> None:
    projections = Projections(api.store)
    for version in versions:
        async with api.store.uow() as uow:
            await projections.version_available(uow, offered(version))


async def default_of(api, token: str) -> str | None:
    async with api.session.get(f"/v1.0/{PROJECT}/datastores/postgresql", headers={"X-Auth-Token": token}) as got:
        assert got.status == 200, await got.text()
        return (await got.json())["datastore"].get("default_version")


async def version_ids(api, token: str) -> dict[str, str]:
    async with api.session.get(f"/v1.0/{PROJECT}/datastores/postgresql/versions",
                               headers={"X-Auth-Token": token}) as got:
        return {v["name"]: v["id"] for v in (await got.json())["versions"]}


async def make_default(api, admin: str, version_id: str, default: bool) -> None:
    async with api.session.patch(f"/v1.0/{PROJECT}/mgmt/datastore-versions/{version_id}",
                                 json={"default": default}, headers={"X-Auth-Token": admin}) as answer:
        assert answer.status == 202, await answer.text()


async def test_the_drivers_newest_offer_is_the_default_until_an_administrator_picks_one(inprocess_api):
    async with inprocess_api() as api:
        admin, member = await api.token(PROJECT, "admin"), await api.token(PROJECT)
        await a_provisioner_starts(api)
        ids = await version_ids(api, member)
        assert await default_of(api, member) == ids["16"]

        await make_default(api, admin, ids["15"], True)
        await a_provisioner_starts(api)  # a restart offers both again
        assert await default_of(api, member) == ids["15"]

        await make_default(api, admin, ids["15"], False)  # no default at all, as Trove allows
        await a_provisioner_starts(api)
        assert await default_of(api, member) is None
