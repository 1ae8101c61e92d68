"""The mgmt datastore versions (reference §3.3, `openstack datastore version
create/set/delete`), admin only (a non-admin gets Trove's 401).

A version is what a compute driver runs: the local driver from installed binaries,
the OpenStack driver from an image. The drivers announce theirs (projections.py);
an administrator may also register one ahead of them (it is `offered` once a driver
announces it under that name, and takes no instances before), switch one off
(`active` false: hidden from tenants, refused for new instances), pick the default,
and delete one nothing uses. Registering needs a datastore that exists: Coffer's
datastores are the engines its drivers run (Trove would create an empty one)."""
from __future__ import annotations

import uuid

from aiohttp import web
from sqlalchemy import delete, func, select, update

from . import datastores as datastores_view, policy, validation, version_parameters, views
from .faults import bad_request, not_found
from .openapi import BOOL, LINKS, STR, V, listing, obj, op, param, ref, wrapped
from .projections import NAMESPACE
from .rest import accepted, base_url, read_json, reading
from .tables import backups, configurations, datastore_versions, datastores, instances

VERSION = param("version", "datastore version id")
NAME_LENGTH = 100
STRINGS = {"type": ["string", "array"], "items": STR}
EDITABLE = {"name": STR, "datastore_manager": STR, "image": STR, "image_tags": {"type": "array", "items": STR},
            "packages": STRINGS, "active": BOOL, "default": BOOL, "registry_ext": STR, "repl_strategy": STR}


def version_id(datastore: str, name: str) -> str:
    """The id a driver's announcement of this version gets too (projections.py)."""
    return str(uuid.uuid5(NAMESPACE, f"{datastore}:{name}"))


def _text(spec: dict, key: str, required: bool = False) -> str | None:
    value = spec.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_LENGTH:
        raise bad_request(f"Validation error: version['{key}'] must be a non-empty string of at most "
                          f"{NAME_LENGTH} characters.")
    return value.strip()


def _bool(spec: dict, key: str) -> bool | None:
    value = spec.get(key)
    if value is not None and not isinstance(value, bool):
        raise bad_request(f"Validation error: version['{key}'] must be true or false.")
    return value


def _list(spec: dict, key: str) -> str | None:
    """A list of strings (or one comma-separated string) as Trove keeps it: comma-separated."""
    value = spec.get(key)
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and "," not in i for i in items):
        raise bad_request(f"Validation error: version['{key}'] must be a list of strings.")
    return ",".join(i.strip() for i in items if i.strip())


def _image(spec: dict) -> str | None:
    value = spec.get("image")
    if value is not None and (not isinstance(value, str) or len(value) > 255):
        raise bad_request("Validation error: version['image'] must be an image id (a string).")
    return value


async def _known_manager(conn, manager: str) -> str:
    """A manager some compute driver here runs: Coffer has a guest agent for those only."""
    known = sorted({r.manager for r in (await conn.execute(select(datastore_versions.c.manager).where(
        datastore_versions.c.offered.is_(True)))).all()})
    if manager not in known:
        raise bad_request(f"Datastore manager {manager!r} is not one Coffer's compute drivers run; "
                          f"known: {', '.join(known) or 'none yet'}.")
    return manager


async def in_use_by(conn, version) -> str | None:
    """What still uses the version (Trove refuses to delete or rename it then)."""
    ds_name = (await conn.execute(select(datastores.c.name).where(
        datastores.c.id == version.datastore_id))).scalar_one()
    for noun, query in (
            ("instance", select(func.count()).select_from(instances).where(
                instances.c.datastore == ds_name, instances.c.datastore_version == version.name)),
            ("backup", select(func.count()).select_from(backups).where(
                backups.c.datastore == ds_name, backups.c.datastore_version == version.name)),
            ("configuration", select(func.count()).select_from(configurations).where(
                configurations.c.datastore_version_id == version.id))):
        if (await conn.execute(query)).scalar_one():
            return noun
    return None


class MgmtVersions:
    SCHEMAS = {
        "MgmtVersion": obj({"id": STR, "name": STR, "version": STR, "datastore_id": STR, "datastore_name": STR,
                            "datastore_manager": STR, "active": BOOL, "default": BOOL,
                            "offered": {**BOOL, "description": "a compute driver here runs it (Coffer)"},
                            "image": {"type": ["string", "null"]}, "image_tags": {"type": "array", "items": STR},
                            "packages": STR, "links": LINKS},
                           ["id", "name", "datastore_name", "active"]),
        "NewMgmtVersion": obj({
            "name": STR, "datastore_name": {**STR, "description": "an existing datastore"},
            "datastore_manager": {**STR, "description": "postgresql, mariadb or redis: one a driver here runs"},
            "version": {**STR, "description": "the version number; the name when not given"},
            "active": BOOL, "default": BOOL, "image": STR, "image_tags": {"type": "array", "items": STR},
            "packages": STRINGS, "registry_ext": STR, "repl_strategy": STR},
            ["name", "datastore_name", "datastore_manager", "active"]),
        "MgmtVersionChanges": obj(EDITABLE),
    }
    PATHS = {
        f"{V}/mgmt/datastore-versions": {
            "get": op("every datastore version, inactive ones too (admin)", 200, listing("versions", "MgmtVersion")),
            "post": op("register a datastore version (admin; 202; 400 when it exists, 404 when its datastore does not)",
                       202, None, body=wrapped("version", ref("NewMgmtVersion")))},
        f"{V}/mgmt/datastore-versions/{{version}}": {
            "get": op("a datastore version, admin view (admin)", 200, wrapped("version", ref("MgmtVersion")),
                      (VERSION,)),
            "patch": op("change a datastore version: name, manager, image, active, default (admin; 202)", 202, None,
                        (VERSION,), body=ref("MgmtVersionChanges")),
            "delete": op("delete a datastore version no instance, backup or configuration uses (admin; 202, "
                         "400 in use)", 202, None, (VERSION,))},
    }

    def __init__(self, store):
        self.store = store

    async def _rows(self, conn, version_id: str | None = None):
        query = select(datastore_versions, datastores.c.name.label("datastore_name"),
                       datastores.c.default_version_id).join(
            datastores, datastores.c.id == datastore_versions.c.datastore_id).order_by(
            datastores.c.name, datastore_versions.c.name)
        if version_id is not None:
            query = query.where(datastore_versions.c.id == version_id)
        return (await conn.execute(query)).all()

    async def _one(self, conn, request):
        rows = await self._rows(conn, request.match_info["version"])
        if not rows:
            raise not_found(f"Datastore version '{request.match_info['version']}' cannot be found.")
        return rows[0]

    @staticmethod
    def view(row, base: str, project: str) -> dict:
        return {"id": row.id, "name": row.name, "version": row.version, "datastore_id": row.datastore_id,
                "datastore_name": row.datastore_name, "datastore_manager": row.manager, "active": row.active,
                "default": row.default_version_id == row.id, "offered": row.offered, "image": row.image or None,
                "image_tags": [t for t in row.image_tags.split(",") if t], "packages": row.packages,
                "links": views.links(base, project, "mgmt/datastore-versions", row.id)}

    async def list(self, request):
        policy.authorize(request, "mgmt:datastore_version:index")
        async with reading(self.store) as conn:
            rows = await self._rows(conn)
        return web.json_response({"versions": [self.view(r, base_url(request), request["project"]) for r in rows]})

    async def show(self, request):
        policy.authorize(request, "mgmt:datastore_version:show")
        async with reading(self.store) as conn:
            row = await self._one(conn, request)
        return web.json_response({"version": self.view(row, base_url(request), request["project"])})

    async def create(self, request):
        policy.authorize(request, "mgmt:datastore_version:create")
        spec = validation.body_object(await read_json(request), "version")
        name, ds_name = _text(spec, "name", True), _text(spec, "datastore_name", True)
        number = _text(spec, "version") or name
        active, default = _bool(spec, "active"), _bool(spec, "default")
        if active is None:
            raise bad_request("Validation error: version['active'] is required (true or false).")
        values = dict(image=_image(spec) or "", image_tags=_list(spec, "image_tags") or "",
                      packages=_list(spec, "packages") or "")
        async with self.store.uow() as uow:
            manager = await _known_manager(uow.conn, _text(spec, "datastore_manager", True))
            ds = await datastores_view.find(uow.conn, ds_name)
            new_id = version_id(ds.name, name)
            clash = (await uow.conn.execute(select(datastore_versions.c.id).where(
                (datastore_versions.c.id == new_id) | ((datastore_versions.c.datastore_id == ds.id)
                                                       & (datastore_versions.c.name == name))))).first()
            if clash:
                raise bad_request(f"A datastore version named '{name}' already exists for datastore {ds.name}.")
            await uow.conn.execute(datastore_versions.insert().values(
                id=new_id, datastore_id=ds.id, name=name, version=number, manager=manager, active=active,
                offered=False, **values))
            if default:
                await uow.conn.execute(update(datastores).where(datastores.c.id == ds.id).values(
                    default_version_id=new_id, default_chosen=True))
        return accepted()

    async def edit(self, request):
        policy.authorize(request, "mgmt:datastore_version:edit")
        spec = await read_json(request)
        if not isinstance(spec, dict):
            raise bad_request("Validation error: the body must be an object of the attributes to change.")
        unknown = set(spec) - set(EDITABLE)
        if unknown:
            raise bad_request(f"Validation error: unknown attributes {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(EDITABLE))}.")
        changes = {k: v for k, v in dict(
            name=_text(spec, "name"), active=_bool(spec, "active"), image=_image(spec),
            image_tags=_list(spec, "image_tags"), packages=_list(spec, "packages")).items() if v is not None}
        default = _bool(spec, "default")
        async with self.store.uow() as uow:
            row = await self._one(uow.conn, request)
            if spec.get("datastore_manager") is not None:
                changes["manager"] = await _known_manager(uow.conn, _text(spec, "datastore_manager"))
            if changes.get("name", row.name) != row.name:
                await self._check_renamable(uow.conn, row, changes["name"])
                changes["offered"] = False  # a driver runs a version by its name: not this new one, yet
            if changes:
                await uow.conn.execute(update(datastore_versions).where(datastore_versions.c.id == row.id)
                                       .values(**changes))
            if default is not None and default != (row.default_version_id == row.id):
                await uow.conn.execute(update(datastores).where(datastores.c.id == row.datastore_id).values(
                    default_version_id=row.id if default else None, default_chosen=True))
        return accepted()

    @staticmethod
    async def _check_renamable(conn, row, name: str) -> None:
        taken = (await conn.execute(select(datastore_versions.c.id).where(
            datastore_versions.c.datastore_id == row.datastore_id, datastore_versions.c.name == name))).first()
        if taken:
            raise bad_request(f"A datastore version named '{name}' already exists for datastore "
                              f"{row.datastore_name}.")
        user = await in_use_by(conn, row)
        if user:  # instances and backups name their version
            raise bad_request(f"Datastore version is in use by {user}: it cannot be renamed.")

    async def delete(self, request):
        policy.authorize(request, "mgmt:datastore_version:delete")
        async with self.store.uow() as uow:
            row = await self._one(uow.conn, request)
            user = await in_use_by(uow.conn, row)
            if user:
                raise bad_request(f"Datastore version is in use by {user}.")
            await version_parameters.forget_version(uow.conn, row.id)
            if row.default_version_id == row.id:  # the drivers' newest offer becomes the default again
                await uow.conn.execute(update(datastores).where(datastores.c.id == row.datastore_id).values(
                    default_version_id=None, default_chosen=None))
            await uow.conn.execute(delete(datastore_versions).where(datastore_versions.c.id == row.id))
        return accepted()

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/mgmt/datastore-versions", self.list)
        app.router.add_post(f"{prefix}/mgmt/datastore-versions", self.create)
        app.router.add_get(f"{prefix}/mgmt/datastore-versions/{{version}}", self.show)
        app.router.add_patch(f"{prefix}/mgmt/datastore-versions/{{version}}", self.edit)
        app.router.add_delete(f"{prefix}/mgmt/datastore-versions/{{version}}", self.delete)
