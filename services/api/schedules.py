"""Schedules that stop and start an instance by cron (beyond Trove: dev instances
switched off at night). GET/POST /instances/{id}/schedules, GET/DELETE
/instances/{id}/schedules/{schedule_id}; {"schedule": {"action": "stop" | "start",
"cron": "0 0 20 * * 1-5"}} (five cron fields, or six with seconds first; UTC).

The API fires them: a firing starts the same operation a request would (the same
checks, status and action_requested event), so it needs the API's records of the
instance. A firing while the instance is busy, or already in the state asked for,
is skipped, logged and kept in the schedule's `last_result`; nothing is left
half-done. Each firing is claimed by moving the schedule's next run with an
optimistic guard, so several API processes fire it once."""
from __future__ import annotations

import json
import logging
import os
import uuid

from aiohttp import web
from sqlalchemy import delete, select, update

from plumbing.cron import Cron
from plumbing.logs import log

from . import policy, power, validation
from .faults import Fault, bad_request, not_found
from .instances import INSTANCE, find
from .openapi import STR, V, obj, op, param, ref, wrapped
from .rest import now, read_json, reading
from .tables import instance_schedules, instances

logger = logging.getLogger("api")
TICK_SECONDS = float(os.environ.get("COFFER_SCHEDULE_TICK_SECONDS", "1"))
MAX_PER_INSTANCE = 20
ACTIONS = {"stop": power.stop, "start": power.start}
SCHEDULE = param("schedule", "schedule id")


def view(row) -> dict:
    return {"id": row.id, "instance_id": row.instance_id, "action": row.action, "cron": row.cron,
            "next_run_at": row.next_run_at.isoformat(), "created": row.created_at.isoformat(),
            "last_run_at": row.last_run_at.isoformat() if row.last_run_at else None,
            "last_result": row.last_result}


class Schedules:
    SCHEMAS = {
        "Schedule": obj({
            "id": STR, "instance_id": STR, "action": {"type": "string", "enum": list(ACTIONS)},
            "cron": STR, "next_run_at": STR, "created": STR, "last_run_at": {"type": ["string", "null"]},
            "last_result": {"type": "string", "description": "\"started\", or why the last firing was skipped"}},
            ["id", "action", "cron", "next_run_at"]),
        "ScheduleCreate": obj({
            "action": {"type": "string", "enum": list(ACTIONS)},
            "cron": {"type": "string", "description": "UTC; five fields (minute hour day month weekday), or six "
                                                      "with seconds first, e.g. \"0 0 20 * * 1-5\""}},
            ["action", "cron"]),
    }
    PATHS = {
        f"{V}/instances/{{instance}}/schedules": {
            "get": op("list the instance's stop/start schedules", 200,
                      obj({"schedules": {"type": "array", "items": ref("Schedule")}}, ["schedules"]), (INSTANCE,)),
            "post": op("add a schedule that stops or starts the instance by cron (400 naming a bad cron)", 200,
                       wrapped("schedule", ref("Schedule")), (INSTANCE,),
                       body=wrapped("schedule", ref("ScheduleCreate")))},
        f"{V}/instances/{{instance}}/schedules/{{schedule}}": {
            "get": op("show a schedule", 200, wrapped("schedule", ref("Schedule")), (INSTANCE, SCHEDULE)),
            "delete": op("remove a schedule", 202, None, (INSTANCE, SCHEDULE))},
    }

    def __init__(self, store):
        self.store = store

    async def list(self, request):
        policy.authorize(request, "instance:extension:schedule:index")
        async with reading(self.store) as conn:
            inst = await find(conn, request)
            rows = (await conn.execute(select(instance_schedules).where(
                instance_schedules.c.instance_id == inst.id).order_by(instance_schedules.c.created_at))).all()
        return web.json_response({"schedules": [view(r) for r in rows]})

    async def show(self, request):
        policy.authorize(request, "instance:extension:schedule:index")
        async with reading(self.store) as conn:
            row = await self._find(conn, request)
        return web.json_response({"schedule": view(row)})

    async def create(self, request):
        policy.authorize(request, "instance:extension:schedule:create")
        spec = validation.body_object(await read_json(request), "schedule", {"action", "cron"})
        if spec.get("action") not in ACTIONS:
            raise bad_request(f"Validation error: schedule['action'] must be one of {', '.join(ACTIONS)}.")
        cron = validation.cron(spec.get("cron"), "schedule['cron']")
        async with self.store.uow() as uow:
            inst = await find(uow.conn, request)
            count = len((await uow.conn.execute(select(instance_schedules.c.id).where(
                instance_schedules.c.instance_id == inst.id))).all())
            if count >= MAX_PER_INSTANCE:
                raise bad_request(f"Instance {inst.id} has {count} schedules already, the most it may have.")
            created = now()
            schedule_id = str(uuid.uuid4())
            await uow.conn.execute(instance_schedules.insert().values(
                id=schedule_id, instance_id=inst.id, project_id=inst.project_id, action=spec["action"],
                cron=cron.expression, next_run_at=cron.next_after(created), last_result="", created_at=created))
            row = (await uow.conn.execute(select(instance_schedules).where(
                instance_schedules.c.id == schedule_id))).one()
        return web.json_response({"schedule": view(row)})

    async def delete(self, request):
        policy.authorize(request, "instance:extension:schedule:delete")
        async with self.store.uow() as uow:
            row = await self._find(uow.conn, request)
            await uow.conn.execute(delete(instance_schedules).where(instance_schedules.c.id == row.id))
        return web.Response(status=202, content_type="application/json")

    @staticmethod
    async def _find(conn, request):
        inst = await find(conn, request)
        row = (await conn.execute(select(instance_schedules).where(
            instance_schedules.c.id == request.match_info["schedule"],
            instance_schedules.c.instance_id == inst.id))).first()
        if row is None:
            raise not_found(f"Schedule {request.match_info['schedule']} could not be found.")
        return row

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/instances/{{instance}}/schedules", self.list)
        app.router.add_post(f"{prefix}/instances/{{instance}}/schedules", self.create)
        app.router.add_get(f"{prefix}/instances/{{instance}}/schedules/{{schedule}}", self.show)
        app.router.add_delete(f"{prefix}/instances/{{instance}}/schedules/{{schedule}}", self.delete)


async def fire_due(store) -> int:
    """Fire every schedule whose time has come; the number fired or skipped."""
    async with reading(store) as conn:
        due = (await conn.execute(select(instance_schedules).where(
            instance_schedules.c.next_run_at <= now()))).all()
    for row in due:
        await fire(store, row)
    return len(due)


async def fire(store, row) -> None:
    moment = now()
    async with store.uow() as uow:  # claim this firing: the next run moves on, once
        claimed = await uow.conn.execute(update(instance_schedules).where(
            instance_schedules.c.id == row.id, instance_schedules.c.next_run_at == row.next_run_at).values(
            next_run_at=Cron.parse(row.cron).next_after(moment), last_run_at=moment))
    if claimed.rowcount != 1:
        return  # another API process fired it, or it was deleted
    try:
        async with store.uow() as uow:
            inst = (await uow.conn.execute(select(instances).where(instances.c.id == row.instance_id))).first()
            if inst is None:  # the instance is gone: so is its schedule
                await uow.conn.execute(delete(instance_schedules).where(instance_schedules.c.id == row.id))
                return
            if inst.task == "delete":
                raise Fault(422, f"Instance {inst.id} is being deleted.")
            operation_id = await ACTIONS[row.action](uow, inst)
        result = "started"
        log(logger, logging.INFO, "schedule fired", schedule_id=row.id, instance_id=row.instance_id,
            action=row.action, operation_id=operation_id)
    except Fault as fault:  # busy, or already stopped/started: nothing was started
        reason = next(iter(json.loads(fault.text).values()))["message"]
        result = f"skipped: {reason}"
        log(logger, logging.WARNING, "schedule firing skipped", schedule_id=row.id, instance_id=row.instance_id,
            action=row.action, reason=reason)
    async with store.uow() as uow:
        await uow.conn.execute(update(instance_schedules).where(instance_schedules.c.id == row.id).values(
            last_result=result))
