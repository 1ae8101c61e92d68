"""Quotas per project (instances, RAM in MB, volume GB, backups), enforced when an
instance is requested; GET /limits and the mgmt quota routes (reference §4.13)."""
from __future__ import annotations

from aiohttp import web
from sqlalchemy import delete, func, select

from . import policy
from .faults import Fault, bad_request, not_found
from .openapi import INT, STR, V, obj, op, param
from .rest import read_json
from .tables import backups, flavors, instances, quotas

DEFAULTS = {"instances": 10, "ram": -1, "volumes": 40, "backups": 50}  # -1: unlimited


async def limits_of(conn, project: str) -> dict[str, int]:
    rows = (await conn.execute(select(quotas).where(quotas.c.project_id == project))).all()
    return {**DEFAULTS, **{r.resource: r.hard_limit for r in rows}}


async def usage_of(conn, project: str) -> dict[str, int]:
    row = (await conn.execute(
        select(func.count(instances.c.id), func.coalesce(func.sum(instances.c.volume_gb), 0),
               func.coalesce(func.sum(flavors.c.ram_mb), 0))
        .select_from(instances.outerjoin(flavors, flavors.c.id == instances.c.flavor_id))
        .where(instances.c.project_id == project))).one()
    backup_count = (await conn.execute(select(func.count()).select_from(backups).where(
        backups.c.project_id == project))).scalar_one()
    return {"instances": row[0], "volumes": int(row[1]), "ram": int(row[2]), "backups": backup_count}


async def check(conn, project: str, wanted: dict[str, int]) -> None:
    """413 overLimit when `wanted` on top of what the project uses passes a limit."""
    limits, used = await limits_of(conn, project), await usage_of(conn, project)
    over = sorted(r for r, n in wanted.items() if limits[r] >= 0 and used[r] + n > limits[r])
    if over:
        raise Fault(413, f"Quota exceeded for resources: {over}.")


TARGET = param("target", "the project whose quotas are meant")


class Quotas:
    PATHS = {
        f"{V}/limits": {"get": op("the project's absolute limits, then its rate limits", 200, obj({"limits": {
            "type": "array", "items": obj({
                "verb": STR, "max_instances": INT, "max_ram": INT, "max_volumes": INT, "max_backups": INT,
                "uri": STR, "regex": STR, "value": INT, "remaining": INT, "unit": STR, "nextAvailable": STR})}}))},
        f"{V}/mgmt/quotas/{{target}}": {
            "get": op("a project's quota usage (its own, or any for an admin)", 200, obj({"quotas": {
                "type": "array", "items": obj({"resource": STR, "in_use": INT, "reserved": INT, "limit": INT})}}),
                (TARGET,)),
            "put": op("set a project's quota limits (admin; Trove answers 200)", 200,
                      obj({"quotas": {"type": "object", "additionalProperties": INT}}), (TARGET,),
                      body=obj({"quotas": {"type": "object", "additionalProperties": {
                          "type": ["integer", "null"], "minimum": -1}}}, ["quotas"]))},
    }

    def __init__(self, store):
        self.store = store

    async def limits(self, request):
        policy.authorize(request, "limits:index")
        async with self.store.engine.connect() as conn:
            limits = await limits_of(conn, request["project"])
        return web.json_response({"limits": [{
            "verb": "ABSOLUTE", "max_instances": limits["instances"], "max_ram": limits["ram"],
            "max_volumes": limits["volumes"], "max_backups": limits["backups"]},
            *request.app["rate_limiter"].status(request["project"])]})

    async def show(self, request):
        policy.authorize(request, "quota:show")
        target = request.match_info["target"]
        if not policy.is_admin(request) and target != request["project"]:
            raise Fault(403, f"User with tenant id {request['project']} cannot access this resource.")
        async with self.store.engine.connect() as conn:
            limits, used = await limits_of(conn, target), await usage_of(conn, target)
        return web.json_response({"quotas": [
            {"resource": r, "in_use": used[r], "reserved": 0, "limit": limits[r]} for r in DEFAULTS]})

    async def update(self, request):
        policy.authorize(request, "mgmt:quota:update")
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("quotas"), dict):
            raise bad_request("The request body needs an object 'quotas'.")
        changes = {r: n for r, n in body["quotas"].items() if n is not None}
        for resource, limit in changes.items():
            if resource not in DEFAULTS:
                raise not_found(f"Quota resource {resource} does not exist.")
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < -1:
                raise bad_request(f"Quota limit for {resource} must be an integer of -1 or more.")
        target = request.match_info["target"]
        async with self.store.uow() as uow:
            for resource, limit in changes.items():
                await uow.conn.execute(delete(quotas).where(quotas.c.project_id == target,
                                                            quotas.c.resource == resource))
                await uow.conn.execute(quotas.insert().values(project_id=target, resource=resource,
                                                              hard_limit=limit))
            limits = await limits_of(uow.conn, target)
        return web.json_response({"quotas": limits})

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/limits", self.limits)
        app.router.add_get(f"{prefix}/mgmt/quotas/{{target}}", self.show)
        app.router.add_put(f"{prefix}/mgmt/quotas/{{target}}", self.update)
