"""Datastores and their versions (reference §4.1): what the compute drivers offer,
learnt from the provisioner's datastore events, and what administrators registered
(mgmt_versions.py); tenants see the active ones only. And each version's configuration
parameter rules (parameter_rules.py, with an administrator's changes: version_parameters.py)."""
from __future__ import annotations

from aiohttp import web
from sqlalchemy import or_, select

from . import parameter_rules, policy, version_parameters, views
from .faults import Fault, bad_request, not_found
from .openapi import BOOL, LINKS, STR, V, listing, obj, op, param, ref, wrapped
from .rest import base_url
from .tables import datastore_versions, datastores

DATASTORE = param("datastore", "datastore id or name")
VERSION = param("version", "version id or name")
PARAMETER = param("name", "parameter name (any case)")


async def find(conn, id_or_name: str):
    """The datastore by id or name; 404 when unknown."""
    row = (await conn.execute(select(datastores).where(
        or_(datastores.c.id == id_or_name, datastores.c.name == id_or_name)))).first()
    if row is None:
        raise not_found(f"Datastore '{id_or_name}' cannot be found.")
    return row


async def versions_of(conn, datastore_id: str, with_inactive: bool = True):
    query = select(datastore_versions).where(datastore_versions.c.datastore_id == datastore_id)
    if not with_inactive:
        query = query.where(datastore_versions.c.active.is_(True))
    return (await conn.execute(query.order_by(datastore_versions.c.name))).all()


def check_usable(version, datastore_name: str) -> None:
    """400 unless new instances may run `version`: an administrator may have switched
    it off, or registered it before any compute driver here can run it."""
    if not version.active:
        raise bad_request(f"Datastore version '{version.name}' of {datastore_name} is not active.")
    if not version.offered:
        raise bad_request(f"Datastore version '{version.name}' of {datastore_name} is registered, but no compute "
                          "driver here runs it yet (the local driver needs its binaries installed, the OpenStack "
                          "driver its image); it takes instances once the provisioner offers it.")


def hidden(request, version) -> bool:
    """An inactive version is the administrators' business only."""
    return not version.active and not policy.is_admin(request)


async def find_version(conn, datastore_id: str, id_or_name: str, missing_status: int = 404):
    """The version by id or name; `missing_status` when unknown (Trove: 400 for a
    name given in a request body, 404 in a path)."""
    rows = (await conn.execute(select(datastore_versions).where(
        datastore_versions.c.datastore_id == datastore_id,
        or_(datastore_versions.c.id == id_or_name, datastore_versions.c.name == id_or_name)))).all()
    if not rows:
        raise Fault(missing_status, f"Datastore version '{id_or_name}' cannot be found.")
    return rows[0]


async def version_by_id(conn, version_id: str):
    row = (await conn.execute(select(datastore_versions).where(datastore_versions.c.id == version_id))).first()
    if row is None:
        raise not_found(f"Datastore version '{version_id}' cannot be found.")
    return row


class Datastores:
    SCHEMAS = {
        "Version": obj({"id": STR, "name": STR, "version": STR, "datastore": STR, "links": LINKS},
                       ["id", "name", "version"]),
        "Datastore": obj({"id": STR, "name": STR, "links": LINKS, "default_version": STR,
                          "versions": {"type": "array", "items": ref("Version")}}, ["id", "name", "versions"]),
        "Parameter": obj({"name": STR, "datastore_version_id": STR, "restart_required": BOOL,
                          "type": {"type": "string", "enum": list(parameter_rules.TYPES)},
                          "min": {"type": "number"}, "max": {"type": "number"},
                          "allowed_values": {"type": "array", "items": STR},
                          "unit": {"type": "string", "description": "of a number, e.g. 8kB or ms (PostgreSQL)"}},
                         ["name", "datastore_version_id", "restart_required", "type"]),
    }
    PATHS = {
        f"{V}/datastores": {"get": op("list datastores", 200, listing("datastores", "Datastore"))},
        f"{V}/datastores/{{datastore}}": {"get": op("show a datastore", 200, wrapped("datastore", ref("Datastore")),
                                                    (DATASTORE,))},
        f"{V}/datastores/{{datastore}}/versions": {"get": op("list a datastore's versions", 200,
                                                             listing("versions", "Version"), (DATASTORE,))},
        f"{V}/datastores/{{datastore}}/versions/{{version}}": {"get": op(
            "show a version", 200, wrapped("version", ref("Version")), (DATASTORE, VERSION))},
        f"{V}/datastores/versions/{{version}}": {"get": op("show a version by id", 200,
                                                           wrapped("version", ref("Version")), (VERSION,))},
        f"{V}/datastores/{{datastore}}/versions/{{version}}/parameters": {"get": op(
            "a version's configuration parameters", 200, listing("configuration-parameters", "Parameter"),
            (DATASTORE, VERSION))},
        f"{V}/datastores/{{datastore}}/versions/{{version}}/parameters/{{name}}": {"get": op(
            "one configuration parameter (unwrapped)", 200, ref("Parameter"), (DATASTORE, VERSION, PARAMETER))},
        f"{V}/datastores/versions/{{version}}/parameters": {"get": op(
            "a version's configuration parameters, by version id", 200,
            listing("configuration-parameters", "Parameter"), (VERSION,))},
        f"{V}/datastores/versions/{{version}}/parameters/{{name}}": {"get": op(
            "one configuration parameter, by version id (unwrapped)", 200, ref("Parameter"), (VERSION, PARAMETER))},
    }

    def __init__(self, store):
        self.store = store

    async def list(self, request):
        b, p, admin = base_url(request), request["project"], policy.is_admin(request)
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(datastores).order_by(datastores.c.name))).all()
            docs = [views.datastore(r, await versions_of(conn, r.id, admin), b, p) for r in rows]
        return web.json_response({"datastores": docs})

    async def show(self, request):
        async with self.store.engine.connect() as conn:
            row = await find(conn, request.match_info["datastore"])
            doc = views.datastore(row, await versions_of(conn, row.id, policy.is_admin(request)),
                                  base_url(request), request["project"])
        return web.json_response({"datastore": doc})

    async def list_versions(self, request):
        async with self.store.engine.connect() as conn:
            row = await find(conn, request.match_info["datastore"])
            versions = await versions_of(conn, row.id, policy.is_admin(request))
        return web.json_response({"versions": [views.version(v, base_url(request), request["project"])
                                               for v in versions]})

    async def show_version(self, request):
        async with self.store.engine.connect() as conn:
            ds = await find(conn, request.match_info["datastore"])
            row = await self._visible(request, await find_version(conn, ds.id, request.match_info["version"]))
        return web.json_response({"version": views.version(row, base_url(request), request["project"])})

    async def show_version_by_id(self, request):
        async with self.store.engine.connect() as conn:
            row = await self._visible(request, await version_by_id(conn, request.match_info["version"]))
        return web.json_response({"version": views.version(row, base_url(request), request["project"])})

    @staticmethod
    async def _visible(request, version):
        if hidden(request, version):
            raise not_found(f"Datastore version '{request.match_info['version']}' cannot be found.")
        return version

    async def _version_in_path(self, conn, request):
        if "datastore" in request.match_info:
            ds = await find(conn, request.match_info["datastore"])
            return await self._visible(request, await find_version(conn, ds.id, request.match_info["version"]))
        return await self._visible(request, await version_by_id(conn, request.match_info["version"]))

    async def list_parameters(self, request):
        async with self.store.engine.connect() as conn:
            version = await self._version_in_path(conn, request)
            rules = await version_parameters.rules_of(conn, version)
        return web.json_response({"configuration-parameters": [
            rules[name].view(version.id) for name in sorted(rules)]})

    async def show_parameter(self, request):
        async with self.store.engine.connect() as conn:
            version = await self._version_in_path(conn, request)
            rule = (await version_parameters.rules_of(conn, version)).get(request.match_info["name"].lower())
        if rule is None:
            raise not_found(f"Configuration parameter {request.match_info['name']} could not be found for "
                            f"version {version.name}.")
        return web.json_response(rule.view(version.id))

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/datastores", self.list)
        app.router.add_get(f"{prefix}/datastores/versions/{{version}}", self.show_version_by_id)
        app.router.add_get(f"{prefix}/datastores/{{datastore}}", self.show)
        app.router.add_get(f"{prefix}/datastores/{{datastore}}/versions", self.list_versions)
        app.router.add_get(f"{prefix}/datastores/{{datastore}}/versions/{{version}}", self.show_version)
        app.router.add_get(f"{prefix}/datastores/versions/{{version}}/parameters", self.list_parameters)
        app.router.add_get(f"{prefix}/datastores/versions/{{version}}/parameters/{{name}}", self.show_parameter)
        app.router.add_get(f"{prefix}/datastores/{{datastore}}/versions/{{version}}/parameters",
                           self.list_parameters)
        app.router.add_get(f"{prefix}/datastores/{{datastore}}/versions/{{version}}/parameters/{{name}}",
                           self.show_parameter)
