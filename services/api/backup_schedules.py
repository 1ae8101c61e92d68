"""Coffer's extension (Trove needs Mistral for it): per instance, a cron schedule for
full and incremental backups and a retention policy (keep the last N chains and/or
everything newer than D days; services/api/retention.py), applied each time one of
the instance's backups completes (services/api/backups_view.py).

    GET/PUT/DELETE /v1.0/{project}/instances/{id}/backup_schedule

Any API process may fire a due schedule: it claims the firing by moving next_*_at
forward only if nobody else did, so each firing starts one backup. A firing finds
the instance busy: it is skipped (and said in the log), the next one comes."""
from __future__ import annotations

import logging
import os
from datetime import datetime

from aiohttp import web
from sqlalchemy import delete, or_, select, update

from plumbing.cron import Cron
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
TICK_SECONDS = float(os.environ.get("COFFER_BACKUP_SCHEDULE_TICK_SECONDS", "1"))
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
            row = (await uow.conn.execute(select(backup_schedules).where(
                backup_schedules.c.instance_id == inst.id))).one()
        return web.json_response({"backup_schedule": view(row)})

    async def delete(self, request):
        policy.authorize(request, "backup:delete")
        async with self.store.uow() as uow:
            inst = await find_instance(uow.conn, request)
            await uow.conn.execute(delete(backup_schedules).where(backup_schedules.c.instance_id == inst.id))
        return web.Response(status=202, content_type="application/json")

    def routes(self, app: web.Application, prefix: str) -> None:
        path = f"{prefix}/instances/{{instance}}/backup_schedule"
        app.router.add_get(path, self.show)
        app.router.add_put(path, self.put)
        app.router.add_delete(path, self.delete)


async def fire_due(store, moment: datetime | None = None) -> int:
    """Start the backups whose time has come and apply retention; how many started."""
    moment = moment or now()
    async with store.engine.connect() as conn:
        due = (await conn.execute(select(backup_schedules).where(or_(
            backup_schedules.c.next_full_at <= moment, backup_schedules.c.next_incremental_at <= moment)))).all()
    started = 0
    for schedule in due:
        started += await _fire(store, schedule, moment)
    return started


async def _fire(store, schedule, moment: datetime) -> int:
    full_due = schedule.next_full_at <= moment
    changes = {"next_full_at": Cron.parse(schedule.full_cron).next_after(moment)} if full_due else {}
    if schedule.next_incremental_at and schedule.next_incremental_at <= moment:
        changes["next_incremental_at"] = Cron.parse(schedule.incremental_cron).next_after(moment)
    async with store.uow() as uow:
        claimed = await uow.conn.execute(update(backup_schedules).where(
            backup_schedules.c.instance_id == schedule.instance_id,
            backup_schedules.c.next_full_at == schedule.next_full_at,
            backup_schedules.c.next_incremental_at.is_not_distinct_from(schedule.next_incremental_at)).values(
            **changes))
        if claimed.rowcount != 1:
            return 0  # another API process fired it
        inst = (await uow.conn.execute(select(instances).where(instances.c.id == schedule.instance_id))).first()
        if inst is None:
            await uow.conn.execute(delete(backup_schedules).where(
                backup_schedules.c.instance_id == schedule.instance_id))
            return 0
        parent = None if full_due else await choose_parent(uow.conn, None, inst, None, 1)
        kind = "incremental" if parent else "full"
        try:  # the checks come before any write: a refusal leaves nothing to undo
            await start_backup(uow, inst, f"scheduled {kind} {moment:%Y-%m-%d %H:%M}",
                               "from the instance's backup schedule", parent)
        except Fault as refused:  # busy: this firing is skipped
            log(logger, logging.WARNING, "scheduled backup skipped", instance_id=inst.id,
                reason=refused.text)
            return 0
    return 1
