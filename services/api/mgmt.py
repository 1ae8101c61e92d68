"""The mgmt extension (reference §3.3), admin only (a non-admin gets Trove's 401):
every project's instances and actions on them. The mgmt quota routes live with the
quotas, the datastore versions in mgmt_versions.py."""
from __future__ import annotations

from aiohttp import web
from sqlalchemy import select, update

from . import policy, views
from .faults import Fault, bad_request
from .instances import INSTANCE, find
from .openapi import BOOL, PAGE, STR, V, listing, obj, op, query, ref, wrapped
from .rest import accepted, base_url, now, paginate_query, paged, query_bool, read_json, reading
from .tables import instances, operations

# mgmt action -> the instance action that does the same (Trove's reboot restarts the database here:
# the local driver has no server to reboot under it)
SAME_AS_INSTANCE_ACTION = {"reboot": "restart", "stop": "stop"}
UNAVAILABLE = {"migrate": "moving an instance to another host", "rebuild": "rebuilding from an image",
               "update": "updating the guest agent from packages"}


class Mgmt:
    SCHEMAS = {
        "MgmtInstance": {"allOf": [ref("Instance"), obj({
            "tenant_id": STR, "server_id": STR, "deleted": BOOL, "deleted_at": {"type": ["string", "null"]},
            "service_status": STR, "task_description": STR,
            "server": obj({"id": STR, "name": STR, "status": STR, "tenant_id": STR,
                           "host": {"type": ["string", "null"]}, "availability_zone": {"type": ["string", "null"]},
                           "addresses": {"type": "array"}}),
            "guest_status": obj({"state_description": STR})})]},
        "MgmtAction": {"type": "object", "minProperties": 1, "maxProperties": 1,
                       "description": "exactly one of reboot, stop, reset-task-status (migrate, rebuild: 501)",
                       "additionalProperties": {"type": "object"}},
    }
    PATHS = {
        f"{V}/mgmt/instances": {"get": op(
            "every project's instances, mgmt view (admin)", 200, listing("instances", "MgmtInstance", True),
            (*PAGE, query("project_id", "only this project's"), query("deleted", "true: deleted ones (none are kept)"),
             query("include_clustered", "true or false, any case")))},
        f"{V}/mgmt/instances/{{instance}}": {"get": op(
            "an instance of any project, mgmt view (admin)", 200, wrapped("instance", ref("MgmtInstance")),
            (INSTANCE,))},
        f"{V}/mgmt/instances/{{instance}}/action": {"post": op(
            "an mgmt action: reboot (restarts the database), stop, reset-task-status (admin; 202)", 202, None,
            (INSTANCE,), body=ref("MgmtAction"))},
    }

    def __init__(self, store, instance_actions: dict):
        self.store = store
        self.instance_actions = instance_actions

    async def list_instances(self, request):
        policy.authorize(request, "mgmt:instance:index")
        query = select(instances)
        if request.query.get("project_id"):
            query = query.where(instances.c.project_id == request.query["project_id"])
        if query_bool(request.query.get("deleted")):
            return paged("instances", [], None)  # deleted instances are not kept
        async with reading(self.store) as conn:
            page, next_link = await paginate_query(conn, query, instances.c.id, request)
        return paged("instances", [views.mgmt_instance(r, base_url(request)) for r in page], next_link)

    async def show_instance(self, request):
        policy.authorize(request, "mgmt:instance:show")
        async with reading(self.store) as conn:
            row = await find(conn, request)
        return web.json_response({"instance": views.mgmt_instance(row, base_url(request))})

    async def action(self, request):
        policy.authorize(request, "mgmt:instance:action")
        body = await read_json(request)
        if not isinstance(body, dict) or len(body) != 1:
            raise bad_request("Invalid request body: name exactly one action.")
        name, value = next(iter(body.items()))
        if name in UNAVAILABLE:
            raise Fault(501, f"The mgmt action {name!r} ({UNAVAILABLE[name]}) is not available with this "
                             "Coffer deployment's compute driver.")
        if name == "reset-task-status":
            async with self.store.uow() as uow:
                await self.reset_task_status(uow, await find(uow.conn, request))
            return accepted()
        handler = self.instance_actions.get(SAME_AS_INSTANCE_ACTION.get(name, ""))
        if handler is None:
            known = sorted({"reset-task-status", *(m for m, a in SAME_AS_INSTANCE_ACTION.items()
                                                   if a in self.instance_actions)})
            raise bad_request(f"Invalid mgmt action: {name!r}. Known: {', '.join(known)}.")
        async with self.store.uow() as uow:
            response = await handler(request, uow, await find(uow.conn, request), value)
        return response or accepted()

    @staticmethod
    async def reset_task_status(uow, inst) -> None:
        """Trove's reset-task-status: the running task ends (its operations fail) and
        the instance shows the status it had before it, without a fault."""
        running = (await uow.conn.execute(select(operations).where(
            operations.c.instance_id == inst.id, operations.c.state == "running"))).all()
        await uow.conn.execute(update(operations).where(
            operations.c.instance_id == inst.id, operations.c.state == "running").values(
            state="failed", message="The task was ended by an administrator's reset-task-status.", finished_at=now()))
        changes = {"task": None, "updated_at": now()}
        before = [op.status_before for op in running if op.exclusive]
        if before and inst.task != "delete":
            changes["status"] = before[0]
        await uow.conn.execute(update(instances).where(instances.c.id == inst.id).values(**changes))

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/mgmt/instances", self.list_instances)
        app.router.add_get(f"{prefix}/mgmt/instances/{{instance}}", self.show_instance)
        app.router.add_post(f"{prefix}/mgmt/instances/{{instance}}/action", self.action)
