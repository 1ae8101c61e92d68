"""Backups (reference §4.10): create, list, show, delete, and an instance's backups.
The backup service owns them; this module checks a request, shows the instance as
BACKUP while its backup runs, and asks the service (coffer.backup.requested.v1 /
delete_requested.v1). Its view is projected from coffer.backup.status_changed.v1."""
from __future__ import annotations

import uuid
from urllib.parse import unquote, urlparse

from aiohttp import web
from sqlalchemy import select, update

from plumbing import objectstore
from plumbing import topics as T
from plumbing.envelope import Event

from . import datastores, operations, policy, quotas, validation
from .backups_view import GB, RESTORABLE, RUNNING, find
from .faults import Fault, bad_request
from .instances import INSTANCE, find as find_instance
from .openapi import LINKS, PAGE, STR, V, listing, obj, op, param, query, ref, wrapped
from .projections import NAMESPACE
from .rest import base_url, now, page_limit, paged, next_link, read_json, reading
from .tables import backups, instances
from .views import links, ts

SOURCE = "api"
BACKUP = param("backup", "backup id")
CREATE_KEYS = {"name", "instance", "description", "parent_id", "incremental", "swift_container",
               "storage_driver", "restore_from"}


def view(row, base: str) -> dict:
    return {
        "id": row.id, "name": row.name, "description": row.description or None,
        "locationRef": row.location or None, "instance_id": row.instance_id or None,
        "created": ts(row.created_at), "updated": ts(row.updated_at),
        "size": round(row.size_bytes / GB, 6) if row.status in RESTORABLE else None,
        "status": row.status, "parent_id": row.parent_id, "project_id": row.project_id,
        "datastore": {"type": row.datastore, "version": row.datastore_version,
                      "version_id": str(uuid.uuid5(NAMESPACE, f"{row.datastore}:{row.datastore_version}"))},
        "fail_reason": row.message or None,
        "links": links(base, row.project_id, "backups", row.id),
    }


def _import_location(value) -> tuple[str, str]:
    """(container, object) of restore_from's remote_location: a backup's locationRef
    (<store>://<container>/<object>, in this deployment's store) or, with Swift, the
    object's URL (.../v1/<account>/<container>/<object>)."""
    if not isinstance(value, str):
        raise bad_request("Validation error: restore_from['remote_location'] must be a string.")
    store = objectstore.kind()
    scheme, _, rest = value.partition("://")
    if scheme in ("http", "https") and store == "swift":
        parts = urlparse(value).path.split("/")
        rest = "/".join(parts[3:]) if len(parts) > 4 and parts[1] == "v1" else ""
    elif scheme != store:
        raise bad_request(f"restore_from['remote_location'] {value!r} is not in this deployment's object store: "
                          f"give a location {store}://<container>/<object>.")
    container, _, name = unquote(rest).partition("/")
    if not objectstore.CONTAINER_NAME.match(container) or not name or \
            any(p in ("", ".", "..") for p in name.split("/")):
        raise bad_request(f"restore_from['remote_location'] {value!r} names no object: give "
                          f"{store}://<container>/<object>.")
    return container, name


def _instance_ref(value) -> str:
    """An instance id, or an href ending in one (Trove accepts both)."""
    if not isinstance(value, str) or not value.strip():
        raise bad_request("Validation error: backup['instance'] must be an instance id.")
    return value.rstrip("/").rsplit("/", 1)[-1]


async def start_backup(uow, inst, name: str, description: str, parent, container: str | None = None) -> str:
    """The instance shows BACKUP and the backup service is asked (422 while the
    instance is busy), to store it in `container` if one is named; the new backup's id."""
    if inst.task or inst.status not in operations.RUNNING:
        raise operations.busy(inst)
    # the status guard makes two concurrent requests for one instance race safely
    taken = await uow.conn.execute(update(instances).where(
        instances.c.id == inst.id, instances.c.task.is_(None), instances.c.status == inst.status).values(
        task="backup", status="BACKUP", updated_at=now()))
    if taken.rowcount != 1:
        raise operations.busy(inst)
    backup_id, created = str(uuid.uuid4()), now()
    await uow.conn.execute(backups.insert().values(
        id=backup_id, project_id=inst.project_id, instance_id=inst.id, name=name,
        description=description, parent_id=parent.id if parent else None, datastore=inst.datastore,
        datastore_version=inst.datastore_version, status="NEW", message="", size_bytes=0, checksum="",
        location="", instance_status_before=inst.status, created_at=created, updated_at=created))
    await uow.emit(T.BACKUP_REQUESTS, Event(
        "coffer.backup.requested.v1", backup_id, source=SOURCE, project=inst.project_id, data={
            "backup_id": backup_id, "project_id": inst.project_id, "instance_id": inst.id,
            "name": name, "description": description, "parent_id": parent.id if parent else None,
            "incremental": parent is not None, "datastore": inst.datastore,
            "datastore_version": inst.datastore_version, "swift_container": container}))
    return backup_id


async def choose_parent(conn, request, inst, parent_id: str | None, incremental: int):
    """The parent of an incremental backup: the one named (404 if unknown; 400 if
    another instance's; 422 if not COMPLETED), else with incremental=1 the
    instance's newest COMPLETED backup; None for a full backup."""
    if parent_id:
        parent = await find(conn, request, parent_id)
        if parent.instance_id != inst.id:
            raise bad_request(f"Backup {parent_id} is not a backup of instance {inst.id}.")
        if parent.status != "COMPLETED":
            raise Fault(422, f"Backup {parent_id} is {parent.status}: only a COMPLETED backup can be a parent.")
        return parent
    if incremental:
        return (await conn.execute(select(backups).where(
            backups.c.instance_id == inst.id, backups.c.status == "COMPLETED").order_by(
            backups.c.created_at.desc()).limit(1))).first()
    return None


class Backups:
    SCHEMAS = {
        "Backup": obj({
            "id": STR, "name": STR, "description": {"type": ["string", "null"]},
            "locationRef": {"type": ["string", "null"], "description": "<store>://<container>/<object>"},
            "instance_id": {"type": ["string", "null"], "description": "null for an imported backup"},
            "created": STR, "updated": STR,
            "size": {"type": ["number", "null"], "description": "GB stored (compressed and encrypted)"},
            "status": {"type": "string", "description": "NEW, BUILDING, COMPLETED, FAILED, RESTORED (imported), "
                                                        "DELETE_FAILED"},
            "parent_id": {"type": ["string", "null"]}, "project_id": STR,
            "datastore": obj({"type": STR, "version": STR, "version_id": STR}),
            "fail_reason": {"type": ["string", "null"], "description": "Coffer: why it FAILED"},
            "links": LINKS},
            ["id", "name", "status", "datastore"]),
        "BackupCreate": obj({
            "name": {"type": "string", "minLength": 1}, "instance": STR, "description": STR,
            "parent_id": STR, "incremental": {"type": "integer", "enum": [0, 1]},
            "swift_container": {"type": "string", "pattern": objectstore.CONTAINER_NAME.pattern,
                                "description": "the container to store it in (else the backup strategy's, else "
                                               "the default)"},
            "storage_driver": STR,
            "restore_from": obj({
                "remote_location": {"type": "string", "description": "where a full backup Coffer wrote is: "
                                                                     "<store>://<container>/<object> (a "
                                                                     "locationRef) or its Swift URL"},
                "local_datastore_version_id": STR, "size": {"type": "number", "minimum": 0}},
                ["remote_location", "local_datastore_version_id", "size"])},
            ["name"]),
    }
    PATHS = {
        f"{V}/backups": {
            "get": op("list backups, newest change first (marker = offset)", 200, listing("backups", "Backup", True),
                      (*PAGE, query("instance_id", "only this instance's"), query("datastore", "name or id"),
                       query("all_projects", "admin: every project's"), query("project_id", "admin: this project's"))),
            "post": op("back up an instance: full, or incremental on a parent (202)", 202,
                       wrapped("backup", ref("Backup")), body=wrapped("backup", ref("BackupCreate")))},
        f"{V}/backups/{{backup}}": {
            "get": op("show a backup", 200, wrapped("backup", ref("Backup")), (BACKUP,)),
            "delete": op("delete a backup and every incremental backup built on it (202)", 202, None, (BACKUP,))},
        f"{V}/instances/{{instance}}/backups": {
            "get": op("an instance's backups", 200, listing("backups", "Backup", True), (INSTANCE, *PAGE))},
    }

    def __init__(self, store):
        self.store = store

    # -- reading -----------------------------------------------------------
    async def _list(self, request, where) -> web.Response:
        limit = page_limit(request)
        try:
            offset = int(request.query.get("marker") or 0)
        except ValueError:
            raise bad_request("marker must be a whole number (an offset).")
        async with reading(self.store) as conn:
            rows = (await conn.execute(select(backups).where(*where).order_by(
                backups.c.updated_at.desc(), backups.c.id).offset(max(offset, 0)).limit(limit + 1))).all()
        page, more = rows[:limit], len(rows) > limit
        return paged("backups", [view(r, base_url(request)) for r in page],
                     next_link(request, offset + limit) if more else None)

    async def list(self, request):
        policy.authorize(request, "backup:index")
        q = request.query
        where = []
        if q.get("all_projects", "").lower() in ("true", "1") or q.get("project_id"):
            policy.authorize(request, "backup:index:all_projects")
            if q.get("project_id"):
                where.append(backups.c.project_id == q["project_id"])
        else:
            where.append(backups.c.project_id == request["project"])
        if q.get("instance_id"):
            where.append(backups.c.instance_id == q["instance_id"])
        if q.get("datastore"):
            where.append(backups.c.datastore == q["datastore"])
        return await self._list(request, where)

    async def list_of_instance(self, request):
        policy.authorize(request, "backup:index")
        async with reading(self.store) as conn:
            inst = await find_instance(conn, request)
        return await self._list(request, [backups.c.instance_id == inst.id])

    async def show(self, request):
        policy.authorize(request, "backup:show")
        async with reading(self.store) as conn:
            row = await find(conn, request)
        return web.json_response({"backup": view(row, base_url(request))})

    # -- create ------------------------------------------------------------
    async def create(self, request):
        policy.authorize(request, "backup:create")
        spec = validation.body_object(await read_json(request), "backup", CREATE_KEYS)
        name = spec.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("Validation error: backup['name'] is required and must be a non-empty string.")
        if spec.get("restore_from") is not None:
            return await self._import(request, spec, name.strip())
        if "instance" not in spec:
            raise bad_request("Validation error: backup['instance'] is required.")
        instance_id = _instance_ref(spec["instance"])
        description = spec.get("description") or ""
        if not isinstance(description, str):
            raise bad_request("Validation error: backup['description'] must be a string.")
        incremental = spec.get("incremental", 0)
        if incremental not in (0, 1) or isinstance(incremental, bool):
            raise bad_request("Validation error: backup['incremental'] must be 0 or 1.")
        parent_id = spec.get("parent_id")
        if parent_id is not None and not isinstance(parent_id, str):
            raise bad_request("Validation error: backup['parent_id'] must be a backup id.")
        container = spec.get("swift_container")
        if container is not None:
            container = validation.container(container, "backup['swift_container']")
        async with self.store.uow() as uow:
            inst = await find_instance(uow.conn, request, instance_id)
            parent = await choose_parent(uow.conn, request, inst, parent_id, incremental)
            await quotas.check(uow.conn, inst.project_id, {"backups": 1})
            backup_id = await start_backup(uow, inst, name.strip(), description, parent, container)
            row = (await uow.conn.execute(select(backups).where(backups.c.id == backup_id))).one()
        return web.json_response({"backup": view(row, base_url(request))}, status=202)

    async def _import(self, request, spec: dict, name: str) -> web.Response:
        """restore_from (reference §4.10): a full backup Coffer wrote, at a location in this
        deployment's store, becomes a backup of the project (RESTORED) once the backup
        service has checked its manifest and opened its data key."""
        source = spec["restore_from"]
        if not isinstance(source, dict) or set(source) - {"remote_location", "local_datastore_version_id", "size"}:
            raise bad_request("Validation error: restore_from must be {remote_location, local_datastore_version_id, "
                              "size}.")
        for key in ("remote_location", "local_datastore_version_id", "size"):
            if key not in source:
                raise bad_request(f"Validation error: restore_from['{key}'] is required.")
        if not isinstance(source["size"], (int, float)) or isinstance(source["size"], bool) or source["size"] < 0:
            raise bad_request("Validation error: restore_from['size'] must be a number of GB.")
        if not isinstance(source["local_datastore_version_id"], str):
            raise bad_request("Validation error: restore_from['local_datastore_version_id'] must be a version id.")
        if "instance" in spec or "parent_id" in spec or spec.get("incremental"):
            raise bad_request("Validation error: an imported backup (restore_from) has no instance or parent.")
        container, name_in_store = _import_location(source["remote_location"])
        description = spec.get("description") or ""
        if not isinstance(description, str):
            raise bad_request("Validation error: backup['description'] must be a string.")
        async with self.store.uow() as uow:
            version = await datastores.version_by_id(uow.conn, source["local_datastore_version_id"])
            datastore = (await datastores.find(uow.conn, version.datastore_id)).name
            await quotas.check(uow.conn, request["project"], {"backups": 1})
            backup_id, created = str(uuid.uuid4()), now()
            await uow.conn.execute(backups.insert().values(
                id=backup_id, project_id=request["project"], instance_id="", name=name, description=description,
                parent_id=None, datastore=datastore, datastore_version=version.name, status="NEW", message="",
                size_bytes=0, checksum="", location="", instance_status_before="", created_at=created,
                updated_at=created))
            await uow.emit(T.BACKUP_REQUESTS, Event(
                "coffer.backup.import_requested.v1", backup_id, source=SOURCE, project=request["project"], data={
                    "backup_id": backup_id, "project_id": request["project"], "name": name,
                    "description": description, "container": container, "object": name_in_store,
                    "datastore": datastore, "datastore_version": version.name}))
            row = (await uow.conn.execute(select(backups).where(backups.c.id == backup_id))).one()
        return web.json_response({"backup": view(row, base_url(request))}, status=202)

    # -- delete ------------------------------------------------------------
    async def delete(self, request):
        policy.authorize(request, "backup:delete")
        async with self.store.uow() as uow:
            row = await find(uow.conn, request)
            chain, frontier = [row], [row.id]
            while frontier:
                children = (await uow.conn.execute(select(backups).where(backups.c.parent_id.in_(frontier)))).all()
                chain += children
                frontier = [c.id for c in children]
            running = [b.id for b in chain if b.status in RUNNING]
            if running:
                raise Fault(422, f"Backup {running[0]} is still running; delete it once it has finished.")
            await uow.emit(T.BACKUP_REQUESTS, Event(
                "coffer.backup.delete_requested.v1", row.id, source=SOURCE, project=row.project_id,
                data={"backup_id": row.id, "project_id": row.project_id}))
        return web.Response(status=202, content_type="application/json")

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/backups", self.list)
        app.router.add_post(f"{prefix}/backups", self.create)
        app.router.add_get(f"{prefix}/backups/{{backup}}", self.show)
        app.router.add_delete(f"{prefix}/backups/{{backup}}", self.delete)
        app.router.add_get(f"{prefix}/instances/{{instance}}/backups", self.list_of_instance)
