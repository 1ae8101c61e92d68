"""Backup strategies (reference §3.1, §4.10): the object-store container new backups of
a project, or of one of its instances, go into.

    POST/GET/DELETE /v1.0/{project}/backup_strategies   (?instance_id, ?project_id)

The backup service owns them and chooses each backup's container with them (the
container a backup request names, else the instance's strategy, else the project's,
else the default); this module checks a request and asks the service
(coffer.backup.strategy_requested.v1). Its list is the view projected from
coffer.backup.strategy_changed.v1, so a strategy is listed once the service has it."""
from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from plumbing import objectstore
from plumbing import topics as T
from plumbing.envelope import Event

from . import policy, validation
from .faults import bad_request
from .instances import find as find_instance
from .openapi import STR, V, obj, op, query, ref, wrapped
from .rest import accepted, read_json, reading
from .tables import backup_strategies

SOURCE = "api"
KEYS = {"swift_container", "instance_id"}


def view(project_id: str, instance_id: str, backend: str, container: str) -> dict:
    """Trove's view; instance_id "" for the project's strategy."""
    return {"project_id": project_id, "instance_id": instance_id, "backend": backend, "swift_container": container}


def target_project(request) -> str:
    """The project a list or delete is about: the caller's, or (admins only) the one named."""
    named = request.query.get("project_id")
    if named and named != request["project"]:
        policy.authorize(request, "backup_strategy:all_projects")
        return named
    return request["project"]


async def project(uow, event: Event) -> None:
    """coffer.backup.strategy_changed.v1 into the view."""
    d = event.data
    key = (backup_strategies.c.project_id == d["project_id"],
           backup_strategies.c.instance_id == (d.get("instance_id") or ""))
    await uow.conn.execute(backup_strategies.delete().where(*key))
    if d.get("swift_container"):
        await uow.conn.execute(backup_strategies.insert().values(
            project_id=d["project_id"], instance_id=d.get("instance_id") or "", backend=d["backend"],
            container=d["swift_container"]))


class BackupStrategies:
    SCHEMAS = {
        "BackupStrategy": obj({
            "project_id": STR,
            "instance_id": {"type": "string", "description": "empty for the project's strategy"},
            "backend": {"type": "string", "description": "the object store: local or swift"},
            "swift_container": STR}, ["project_id", "instance_id", "backend", "swift_container"]),
        "BackupStrategyCreate": obj({
            "swift_container": {"type": "string", "pattern": objectstore.CONTAINER_NAME.pattern,
                                "description": "the container new backups go into"},
            "instance_id": {"type": "string", "description": "only this instance's backups; the project's if "
                                                             "absent"}}, ["swift_container"]),
    }
    FILTERS = (query("instance_id", "only this instance's strategy"),
               query("project_id", "admin: this project's (default: the token's)"))
    PATHS = {
        f"{V}/backup_strategies": {
            "get": op("backup strategies (the container backups go into, per project or instance)", 200,
                      obj({"backup_strategies": {"type": "array", "items": ref("BackupStrategy")}},
                          ["backup_strategies"]), FILTERS),
            "post": op("set the backup strategy of the project or one instance (202; listed once the backup "
                       "service has it)", 202, wrapped("backup_strategy", ref("BackupStrategy")),
                       body=wrapped("backup_strategy", ref("BackupStrategyCreate"))),
            "delete": op("remove the project's strategy, or an instance's (?instance_id) (202)", 202, None,
                         FILTERS)},
    }

    def __init__(self, store):
        self.store = store

    async def list(self, request):
        policy.authorize(request, "backup_strategy:index")
        where = [backup_strategies.c.project_id == target_project(request)]
        if request.query.get("instance_id"):
            where.append(backup_strategies.c.instance_id == request.query["instance_id"])
        async with reading(self.store) as conn:
            rows = (await conn.execute(select(backup_strategies).where(*where).order_by(
                backup_strategies.c.instance_id))).all()
        return web.json_response({"backup_strategies": [
            view(r.project_id, r.instance_id, r.backend, r.container) for r in rows]})

    async def create(self, request):
        policy.authorize(request, "backup_strategy:create")
        spec = validation.body_object(await read_json(request), "backup_strategy", KEYS)
        if "swift_container" not in spec:
            raise bad_request("Validation error: backup_strategy['swift_container'] is required.")
        container = validation.container(spec["swift_container"], "backup_strategy['swift_container']")
        instance_id = spec.get("instance_id") or None
        if instance_id is not None and not isinstance(instance_id, str):
            raise bad_request("Validation error: backup_strategy['instance_id'] must be an instance id.")
        async with self.store.uow() as uow:
            project_id = request["project"]
            if instance_id:
                project_id = (await find_instance(uow.conn, request, instance_id)).project_id
            await self._ask(uow, project_id, instance_id, container)
        return web.json_response({"backup_strategy": view(project_id, instance_id or "", objectstore.kind(),
                                                          container)}, status=202)

    async def delete(self, request):
        policy.authorize(request, "backup_strategy:delete")
        project_id = target_project(request)
        async with self.store.uow() as uow:
            await self._ask(uow, project_id, request.query.get("instance_id") or None, None)
        return accepted()

    @staticmethod
    async def _ask(uow, project_id: str, instance_id: str | None, container: str | None) -> None:
        await uow.emit(T.BACKUP_REQUESTS, Event(
            "coffer.backup.strategy_requested.v1", project_id, source=SOURCE, project=project_id,
            data={"project_id": project_id, "instance_id": instance_id, "swift_container": container}))

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/backup_strategies", self.list)
        app.router.add_post(f"{prefix}/backup_strategies", self.create)
        app.router.add_delete(f"{prefix}/backup_strategies", self.delete)
