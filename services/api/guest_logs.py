"""Guest logs (reference §4.7): GET /instances/{id}/log lists the instance's logs,
POST /instances/{id}/log {"name": .., "enable"|"disable"|"publish"|"discard": 1}
acts on one and shows it (a body with only the name shows it). The instance's agent
reads its engine's logs and settings and writes published logs to the object store:
each request is a side operation (operations.start) answered once the agent has
done it. Which logs each engine has is data here, so an unknown log or switching a
SYS log is refused before anything travels."""
from __future__ import annotations

import os

from aiohttp import web

from . import instances, operations, policy
from .faults import Fault, bad_request, not_found
from .openapi import INT, STR, V, obj, op, param, wrapped
from .rest import read_json

WAIT_SECONDS = float(os.environ.get("COFFER_GUEST_LOG_WAIT_SECONDS", "65"))
USER, SYS = "USER", "SYS"
# datastore -> log -> type (the agent's plugins write them: agent/datastores/*/logs.py)
LOGS = {
    "postgresql": {"general": USER, "slow_query": USER, "error": SYS},
    "mariadb": {"general": USER, "slow_query": USER, "error": SYS},
    "mysql": {"general": USER, "slow_query": USER, "error": SYS},
    "redis": {"slow_query": USER, "error": SYS},
}
# Trove's order when several are asked at once
ACTIONS = ("enable", "disable", "publish", "discard")
INSTANCE = param("instance", "instance id")
FLAG = {"type": "integer", "enum": [0, 1], "description": "1 (or true) to do it"}


def requested_actions(body) -> tuple[str, list[str]]:
    """The log's name and the actions asked for, in Trove's order; 400 for a bad body."""
    if not isinstance(body, dict):
        raise bad_request("Validation error: the body must be an object with the log's 'name'.")
    unknown = sorted(set(body) - {"name", *ACTIONS})
    if unknown:
        raise bad_request(f"Validation error: unexpected attributes {unknown}.")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request("Validation error: 'name' (the log's name) is required.")
    for action in ACTIONS:
        if action in body and body[action] not in (0, 1, True, False):
            raise bad_request(f"Validation error: '{action}' must be 0 or 1.")
    wanted = [action for action in ACTIONS if body.get(action)]
    if "enable" in wanted and "disable" in wanted:
        raise bad_request("Cannot enable and disable a log at the same time.")
    return name, wanted


class GuestLogs:
    SCHEMAS = {
        "GuestLog": obj({
            "name": STR, "type": {"type": "string", "enum": [USER, SYS],
                                  "description": "USER: switched on and off by the tenant; SYS: always on"},
            "status": {"type": "string", "description": "Disabled, Enabled, Unavailable, Ready, Published, Partial, "
                                                        "Rotated or Restart Required (Trove's values)"},
            "published": {**INT, "description": "bytes published"},
            "pending": {**INT, "description": "bytes not published yet"},
            "container": {**STR, "description": "object store container of the published parts, \"None\" before"},
            "prefix": {**STR, "description": "<instance>/<datastore>-<log>/ (\"None\" before a publish)"},
            "metafile": {**STR, "description": "the object describing what was published (JSON)"}},
            ["name", "type", "status", "published", "pending", "container", "prefix", "metafile"]),
        "GuestLogAction": obj({"name": STR, "enable": FLAG, "disable": FLAG, "publish": FLAG, "discard": FLAG},
                              ["name"]),
    }
    PATHS = {
        f"{V}/instances/{{instance}}/log": {
            "get": op("the instance's guest logs (PostgreSQL and MariaDB/MySQL: general, slow_query, error; "
                      "Redis: slow_query (its SLOWLOG), error); answers once the agent has looked (400 if it "
                      "fails or does not answer in time)", 200,
                      obj({"logs": {"type": "array", "items": {"$ref": "#/components/schemas/GuestLog"}}},
                          ["logs"]), (INSTANCE,)),
            "post": op("show a log (only `name`), or enable/disable it (USER logs; live where the engine can, "
                       "else status Restart Required until a restart), publish its new content to the object "
                       "store, discard what was published; 404 for an unknown log, 400 for enable with disable "
                       "or switching a SYS log", 200,
                       wrapped("log", {"$ref": "#/components/schemas/GuestLog"}), (INSTANCE,),
                       body={"$ref": "#/components/schemas/GuestLogAction"})},
    }

    def __init__(self, store):
        self.store = store

    async def _ask(self, request, arguments: dict) -> dict:
        async with self.store.uow() as uow:
            inst = await instances.find(uow.conn, request)
            logs = LOGS.get(inst.datastore, {})
            name = arguments.get("name")
            if name is not None and name not in logs:
                raise not_found(f"Log {name!r} not found for datastore {inst.datastore}; its logs: "
                                f"{', '.join(sorted(logs))}.")
            if logs.get(name) == SYS and {"enable", "disable"} & set(arguments.get("actions", ())):
                raise bad_request(f"Log {name!r} is a SYS log: it is always on and cannot be enabled or disabled.")
            if inst.status not in operations.RUNNING:
                raise Fault(422, f"Instance {inst.id} is not ready, status: {inst.status}.")
            operation_id = await operations.start(uow, inst, "guest_log", arguments, exclusive=False)
        return await operations.outcome(self.store, operation_id, "The guest log request", WAIT_SECONDS)

    async def list_logs(self, request):
        policy.authorize(request, "instance:guest_log_list")
        output = await self._ask(request, {"actions": ["list"]})
        return web.json_response({"logs": output["logs"]})

    async def act(self, request):
        name, wanted = requested_actions(await read_json(request))
        policy.authorize(request, "instance:guest_log_action" if wanted else "instance:guest_log_list")
        output = await self._ask(request, {"name": name, "actions": wanted})
        return web.json_response({"log": output["log"]})

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/instances/{{instance}}/log", self.list_logs)
        app.router.add_post(f"{prefix}/instances/{{instance}}/log", self.act)
