"""Coffer's extension (Trove needs Mistral for it): per instance, a cron schedule for
full and incremental backups and a retention policy (keep the last N chains and/or
everything newer than D days).

    GET/PUT/DELETE /v1.0/{project}/instances/{id}/backup_schedule

The backup service owns schedules and retention (services/backup/schedules.py): this
module checks a request, shows it at once and asks the service
(coffer.backup.schedule_requested.v1); the view then follows what the service
announces (coffer.backup.schedule_changed.v1, with the next firings). A firing the
service announces (coffer.backup.schedule_fired.v1) starts a backup here, as a
request would: an instance that is busy then skips it (said in the log), the next
firing comes."""
from __future__ import annotations

import logging
from datetime import datetime

from aiohttp import web
from sqlalchemy import delete, select

from plumbing import topics as T
from plumbing.envelope import Event
from plumbing.logs import log

from . import policy, validation
from .backups import choose_parent, start_backup
from .faults import Fault, bad_request, not_found
from .instances import INSTANCE, find as find_instance
from .openapi import STR, V, obj, op, wrapped
from .rest import now, read_json, reading
from .tables import backup_schedules, instances
from .views import ts

SOURCE = "api"
logger = logging.getLogger("api")
KEYS = {"full", "incremental", "keep_last_chains", "keep_days"}
MAX_COUNT = 36500  # chains, or days: a hundred years


def _count(value, key: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_COUNT:
        raise bad_request(f"Validation error: backup_schedule['{key}'] must be a whole number from 1 to "
                          f"{MAX_COUNT}.")
    return value


def view(row) -> dict:
    return {"instance_id": row.instance_id, "full": row.full_cron, "incremental": row.incremental_cron,
            "keep_last_chains": row.keep_last_chains, "keep_days": row.keep_days,
            "next_full_at": ts(row.next_full_at), "next_incremental_at": ts(row.next_incremental_at)}


class BackupSchedules:
    SCHEMAS = {
        "BackupSchedule": obj({
            "full": {"type": "string", "description": "cron (5 fields, UTC) for full backups"},
            "incremental": {"type": ["string", "null"], "description": "cron for incremental backups, on the "
                                                                       "newest completed one"},
            "keep_last_chains": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_COUNT,
                                 "description": "keep the newest N chains (a full backup and its incrementals)"},
            "keep_days": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_COUNT,
                          "description": "keep every chain with a backup newer than D days"},
            "instance_id": STR, "next_full_at": STR, "next_incremental_at": {"type": ["string", "null"]}},
            ["full"]),
    }
    PATHS = {
        f"{V}/instances/{{instance}}/backup_schedule": {
            "get": op("Coffer: the instance's backup schedule and retention", 200,
                      wrapped("backup_schedule", {"$ref": "#/components/schemas/BackupSchedule"}), (INSTANCE,)),
            "put": op("Coffer: set the instance's backup schedule and retention (replaces it)", 200,
                      wrapped("backup_schedule", {"$ref": "#/components/schemas/BackupSchedule"}), (INSTANCE,),
                      body=wrapped("backup_schedule", {"$ref": "#/components/schemas/BackupSchedule"})),
            "delete": op("Coffer: no more scheduled backups (existing backups stay)", 202, None, (INSTANCE,))},
    }

    def __init__(self, store):
        self.store = store

    async def show(self, request):
        policy.authorize(request, "backup:index")
        async with reading(self.store) as conn:
            inst = await find_instance(conn, request)
            row = (await conn.execute(select(backup_schedules).where(
                backup_schedules.c.instance_id == inst.id))).first()
        if row is None:
            raise not_found(f"Instance {inst.id} has no backup schedule.")
        return web.json_response({"backup_schedule": view(row)})

    async def put(self, request):
        policy.authorize(request, "backup:create")
        spec = validation.body_object(await read_json(request), "backup_schedule",
                                      KEYS | {"instance_id", "next_full_at", "next_incremental_at"})
        full = validation.cron(spec.get("full"), "backup_schedule['full']")
        incremental = (validation.cron(spec["incremental"], "backup_schedule['incremental']")
                       if spec.get("incremental") else None)
        values = dict(full_cron=full.expression, incremental_cron=incremental.expression if incremental else None,
                      keep_last_chains=_count(spec.get("keep_last_chains"), "keep_last_chains"),
                      keep_days=_count(spec.get("keep_days"), "keep_days"),
                      next_full_at=full.next_after(now()),
                      next_incremental_at=incremental.next_after(now()) if incremental else None, updated_at=now())
        async with self.store.uow() as uow:
            inst = await find_instance(uow.conn, request)
            await uow.conn.execute(delete(backup_schedules).where(backup_schedules.c.instance_id == inst.id))
            await uow.conn.execute(backup_schedules.insert().values(
                instance_id=inst.id, project_id=inst.project_id, **values))
            await _ask(uow, inst, values)
            row = (await uow.conn.execute(select(backup_schedules).where(
                backup_schedules.c.instance_id == inst.id))).one()
        return web.json_response({"backup_schedule": view(row)})

    async def delete(self, request):
        policy.authorize(request, "backup:delete")
        async with self.store.uow() as uow:
            inst = await find_instance(uow.conn, request)
            await uow.conn.execute(delete(backup_schedules).where(backup_schedules.c.instance_id == inst.id))
            await _ask(uow, inst, None)
        return web.Response(status=202, content_type="application/json")

    def routes(self, app: web.Application, prefix: str) -> None:
        path = f"{prefix}/instances/{{instance}}/backup_schedule"
        app.router.add_get(path, self.show)
        app.router.add_put(path, self.put)
        app.router.add_delete(path, self.delete)


async def _ask(uow, inst, values: dict | None) -> None:
    """Ask the backup service to apply the schedule (`values` as stored here), or to drop it."""
    values = values or {}
    await uow.emit(T.BACKUP_REQUESTS, Event(
        "coffer.backup.schedule_requested.v1", inst.id, source=SOURCE, project=inst.project_id, data={
            "instance_id": inst.id, "project_id": inst.project_id, "full": values.get("full_cron"),
            "incremental": values.get("incremental_cron"), "keep_last_chains": values.get("keep_last_chains"),
            "keep_days": values.get("keep_days")}))


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


async def project(uow, event: Event) -> None:
    """coffer.backup.schedule_changed.v1 into the view: the schedule as the service applies it."""
    d = event.data
    await uow.conn.execute(delete(backup_schedules).where(backup_schedules.c.instance_id == d["instance_id"]))
    if d.get("full"):
        await uow.conn.execute(backup_schedules.insert().values(
            instance_id=d["instance_id"], project_id=d["project_id"], full_cron=d["full"],
            incremental_cron=d.get("incremental"), keep_last_chains=d.get("keep_last_chains"),
            keep_days=d.get("keep_days"), next_full_at=_moment(d["next_full_at"]),
            next_incremental_at=_moment(d.get("next_incremental_at")), updated_at=now()))


async def fired(uow, event: Event) -> None:
    """coffer.backup.schedule_fired.v1: the backup a request would start, unless the
    instance is gone or busy (then this firing is skipped)."""
    d = event.data
    inst = (await uow.conn.execute(select(instances).where(instances.c.id == d["instance_id"]))).first()
    if inst is None:
        return
    moment = _moment(d["due_at"])
    parent = await choose_parent(uow.conn, None, inst, None, 1) if d["kind"] == "incremental" else None
    kind = "incremental" if parent else "full"
    try:  # the checks come before any write: a refusal leaves nothing to undo
        await start_backup(uow, inst, f"scheduled {kind} {moment:%Y-%m-%d %H:%M}",
                           "from the instance's backup schedule", parent)
    except Fault as refused:  # busy: this firing is skipped
        log(logger, logging.WARNING, "scheduled backup skipped", instance_id=inst.id, reason=refused.text)
