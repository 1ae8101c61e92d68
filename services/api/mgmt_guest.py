"""The mgmt extension's guest routes (reference §3.3), admin only (a non-admin gets
Trove's 401): an instance's root history, its hardware, its guest's diagnostics and
whether its agent answers. The API learns these from the bus, not by calling the
agent: the heartbeats (agent_telemetry.py) and root enabling (accounts.py)."""
from __future__ import annotations

import json
from datetime import timedelta

from aiohttp import web
from sqlalchemy import select

from . import flavors, policy, validation
from .agent_telemetry import FIGURES_EVERY_SECONDS
from .faults import Fault, bad_request
from .instances import INSTANCE, find
from .openapi import BOOL, INT, STR, V, obj, op, wrapped
from .rest import now, read_json, reading
from .tables import root_history
from .views import ts

# an agent heartbeats every second and the API writes one every FIGURES_EVERY_SECONDS: three
# of those missed is an agent that does not answer
PING_FRESH = timedelta(seconds=3 * FIGURES_EVERY_SECONDS)
NUMBER = {"type": "number"}


class MgmtGuest:
    SCHEMAS = {}
    PATHS = {
        f"{V}/mgmt/instances/{{instance}}/root": {"get": op(
            "root history: when root was first enabled and by whom (`Never`/`Nobody` if it never was) (admin)",
            200, wrapped("root_history", obj({"id": STR, "enabled": STR, "user": STR}, ["id", "enabled", "user"])),
            (INSTANCE,))},
        f"{V}/mgmt/instances/{{instance}}/hwinfo": {"get": op(
            "the instance's hardware: its flavor's memory (kB) and CPUs (admin)", 200,
            wrapped("hwinfo", obj({"mem_total": INT, "num_cpus": INT}, ["mem_total", "num_cpus"])), (INSTANCE,))},
        f"{V}/mgmt/instances/{{instance}}/diagnostics": {"get": op(
            "the engine's processes as its agent's last heartbeat saw them (admin; 400 before the first)", 200,
            wrapped("diagnostics", obj({
                "vmRss": {**INT, "description": "resident memory of the engine's processes, kB"},
                "cpu_seconds": NUMBER, "cpu_percent": NUMBER, "connections": INT, "engine_up": BOOL, "role": STR,
                "heartbeat_at": STR})), (INSTANCE,))},
        f"{V}/mgmt/instances/{{instance}}/rpc_ping": {"get": op(
            "whether the guest agent is heard from: 204 if it heartbeat lately, else 400 (admin)", 204, None,
            (INSTANCE,))},
        f"{V}/mgmt/instances/{{instance}}/upgrade": {"post": op(
            "upgrade the guest agent: 501, the agents run the installed Coffer release (admin)", 202, None,
            (INSTANCE,), body=obj({"upgrade": {"type": "object"}}, ["upgrade"]))},
    }

    def __init__(self, store):
        self.store = store

    async def _instance(self, request, rule: str):
        policy.authorize(request, rule)
        async with reading(self.store) as conn:
            return await find(conn, request)

    async def root(self, request):
        policy.authorize(request, "mgmt:instance:root")
        async with reading(self.store) as conn:
            inst = await find(conn, request)
            row = (await conn.execute(select(root_history).where(root_history.c.instance_id == inst.id))).first()
        return web.json_response({"root_history": {
            "id": inst.id, "enabled": ts(row.enabled_at) if row else "Never",
            "user": row.user_id if row else "Nobody"}})

    async def hwinfo(self, request):
        policy.authorize(request, "mgmt:instance:hwinfo")
        async with reading(self.store) as conn:
            inst = await find(conn, request)
            flavor = await flavors.find(conn, inst.flavor_id)
        if flavor is None:
            raise bad_request(f"The flavor {inst.flavor_id} of instance {inst.id} is gone.")
        return web.json_response({"hwinfo": {"mem_total": flavor.ram_mb * 1024, "num_cpus": flavor.vcpus}})

    async def diagnostics(self, request):
        inst = await self._instance(request, "mgmt:instance:diagnostics")
        if inst.heartbeat_at is None:
            raise bad_request(f"The guest agent of instance {inst.id} has not reported yet.")
        figures = json.loads(inst.guest_figures or "{}")
        doc = {k: figures[k] for k in ("cpu_seconds", "cpu_percent", "connections", "engine_up", "role")
               if k in figures}
        if "rss_bytes" in figures:
            doc["vmRss"] = figures["rss_bytes"] // 1024
        return web.json_response({"diagnostics": {**doc, "heartbeat_at": ts(inst.heartbeat_at)}})

    async def rpc_ping(self, request):
        inst = await self._instance(request, "mgmt:instance:rpc_ping")
        if inst.heartbeat_at is None:
            raise bad_request(f"The guest agent of instance {inst.id} has not been heard from.")
        if now() - inst.heartbeat_at > PING_FRESH:
            raise bad_request(f"The guest agent of instance {inst.id} has not been heard from since "
                              f"{ts(inst.heartbeat_at)}.")
        return web.Response(status=204, content_type="application/json")

    async def upgrade(self, request):
        await self._instance(request, "mgmt:instance:upgrade")
        validation.body_object(await read_json(request), "upgrade")
        raise Fault(501, "Upgrading an instance's guest agent is not available: Coffer's agents run the Coffer "
                         "release installed on their host, and are upgraded with it.")

    def routes(self, app: web.Application, prefix: str) -> None:
        base = f"{prefix}/mgmt/instances/{{instance}}"
        app.router.add_get(f"{base}/root", self.root)
        app.router.add_get(f"{base}/hwinfo", self.hwinfo)
        app.router.add_get(f"{base}/diagnostics", self.diagnostics)
        app.router.add_get(f"{base}/rpc_ping", self.rpc_ping)
        app.router.add_post(f"{base}/upgrade", self.upgrade)
