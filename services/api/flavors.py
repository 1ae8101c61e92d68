"""Flavors: GET /flavors and /flavors/{id} (reference §4.2), and the flavors a
datastore version may run on (§4.1): every flavor, as in Trove unless an operator
restricts them, which Coffer has no means to do."""
from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from . import datastores, views
from .faults import not_found
from .openapi import INT, LINKS, STR, V, listing, obj, op, param, ref, wrapped
from .rest import base_url
from .tables import flavors

FLAVOR = param("flavor", "flavor id")
DATASTORE, VERSION = param("datastore", "datastore id or name"), param("version", "version id or name")


async def find(conn, flavor_id: str):
    return (await conn.execute(select(flavors).where(flavors.c.id == flavor_id))).first()


class Flavors:
    SCHEMAS = {"Flavor": obj({"id": {"type": ["integer", "null"]}, "str_id": STR, "name": STR, "ram": INT,
                              "vcpus": INT, "disk": INT, "ephemeral": INT, "links": LINKS},
                             ["id", "str_id", "name", "ram", "vcpus"])}
    PATHS = {
        f"{V}/flavors": {"get": op("list flavors", 200, listing("flavors", "Flavor"))},
        f"{V}/flavors/{{flavor}}": {"get": op("show a flavor", 200, wrapped("flavor", ref("Flavor")), (FLAVOR,))},
        f"{V}/datastores/{{datastore}}/versions/{{version}}/flavors": {"get": op(
            "the flavors the version may run on: all of them; 404 for an unknown datastore or version", 200,
            listing("flavors", "Flavor"), (DATASTORE, VERSION))},
    }

    def __init__(self, store):
        self.store = store

    async def list(self, request):
        async with self.store.engine.connect() as conn:
            if "version" in request.match_info:
                ds = await datastores.find(conn, request.match_info["datastore"])
                await datastores.find_version(conn, ds.id, request.match_info["version"])
            rows = (await conn.execute(select(flavors).order_by(flavors.c.ram_mb))).all()
        return web.json_response({"flavors": [views.flavor(r, base_url(request), request["project"]) for r in rows]})

    async def show(self, request):
        async with self.store.engine.connect() as conn:
            row = await find(conn, request.match_info["flavor"])
        if row is None:
            raise not_found(f"Flavor {request.match_info['flavor']} could not be found.")
        return web.json_response({"flavor": views.flavor(row, base_url(request), request["project"])})

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/flavors", self.list)
        app.router.add_get(f"{prefix}/flavors/{{flavor}}", self.show)
        app.router.add_get(f"{prefix}/datastores/{{datastore}}/versions/{{version}}/flavors", self.list)
