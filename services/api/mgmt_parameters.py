"""The mgmt configuration parameters (reference §3.3, troveclient's
MgmtConfigurationParameters), admin only (a non-admin gets Trove's 401): an
administrator adds, replaces or removes a version's parameter rules; configuration
groups are checked against the result (version_parameters.py). Trove's body:
{"configuration-parameter": {name, restart_required (0/1), data_type, min_size?, max_size?}}."""
from __future__ import annotations

from aiohttp import web

from . import datastores, parameter_rules, policy, validation, version_parameters
from .faults import bad_request, not_found
from .openapi import STR, V, listing, obj, op, param, ref
from .rest import read_json, reading

VERSION = param("version", "datastore version id")
NAME = param("name", "parameter name (any case)")
NUMBER = {"type": ["integer", "number", "string"], "description": "a number (or its text)"}
NAME_LENGTH = 255


def _number(spec: dict, key: str) -> int | float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value) if "." in value else int(value)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"Validation error: configuration-parameter['{key}'] must be a number.")
    return value


def rule_from(body, name: str | None = None) -> parameter_rules.Rule:
    """The rule a request body describes (`name`: the one in the path, for PUT)."""
    spec = validation.body_object(body, "configuration-parameter")
    given = spec.get("name", name)
    if not isinstance(given, str) or not given.strip() or len(given) > NAME_LENGTH or given != given.strip():
        raise bad_request("Validation error: configuration-parameter['name'] must be a parameter name.")
    if name is not None and given.lower() != name.lower():
        raise bad_request(f"Validation error: the body names {given!r}, the path {name!r}.")
    restart = spec.get("restart_required")
    if restart not in (0, 1) or isinstance(restart, float):  # True and False are 1 and 0
        raise bad_request("Validation error: configuration-parameter['restart_required'] must be 0 or 1.")
    kind = spec.get("data_type")
    if kind not in parameter_rules.TYPES:
        raise bad_request(f"Validation error: configuration-parameter['data_type'] must be one of "
                          f"{', '.join(parameter_rules.TYPES)}.")
    low, high = _number(spec, "min_size"), _number(spec, "max_size")
    if (low is not None or high is not None) and kind not in ("integer", "float"):
        raise bad_request("Validation error: min_size and max_size are for integer and float parameters.")
    if low is not None and high is not None and low > high:
        raise bad_request("Validation error: min_size is greater than max_size.")
    return parameter_rules.Rule(name=given, type=kind, restart_required=bool(restart), min=low, max=high)


class MgmtParameters:
    SCHEMAS = {
        "NewParameter": obj({"configuration-parameter": obj({
            "name": STR, "restart_required": {"type": ["integer", "boolean"], "description": "0 or 1"},
            "data_type": {"type": "string", "enum": list(parameter_rules.TYPES)},
            "min_size": NUMBER, "max_size": NUMBER}, ["name", "restart_required", "data_type"])},
            ["configuration-parameter"]),
    }
    PATHS = {
        f"{V}/mgmt/datastores/versions/{{version}}/parameters": {
            "get": op("a version's configuration parameters in force (admin)", 200,
                      listing("configuration-parameters", "Parameter"), (VERSION,)),
            "post": op("add (or replace) a configuration parameter rule (admin)", 200, ref("Parameter"), (VERSION,),
                       body=ref("NewParameter"))},
        f"{V}/mgmt/datastores/versions/{{version}}/parameters/{{name}}": {
            "get": op("one configuration parameter (admin; unwrapped)", 200, ref("Parameter"), (VERSION, NAME)),
            "put": op("replace a configuration parameter rule (admin)", 200, ref("Parameter"), (VERSION, NAME),
                      body=ref("NewParameter")),
            "delete": op("remove a configuration parameter rule: groups may not set it any more (admin; 204)",
                         204, None, (VERSION, NAME))},
    }

    def __init__(self, store):
        self.store = store

    async def _rule(self, conn, request, version):
        name = request.match_info["name"]
        rule = (await version_parameters.rules_of(conn, version)).get(name.lower())
        if rule is None:
            raise not_found(f"Configuration parameter {name} could not be found for version {version.name}.")
        return rule

    async def list(self, request):
        policy.authorize(request, "mgmt:parameter:index")
        async with reading(self.store) as conn:
            version = await datastores.version_by_id(conn, request.match_info["version"])
            rules = await version_parameters.rules_of(conn, version)
        return web.json_response({"configuration-parameters": [rules[n].view(version.id) for n in sorted(rules)]})

    async def show(self, request):
        policy.authorize(request, "mgmt:parameter:show")
        async with reading(self.store) as conn:
            version = await datastores.version_by_id(conn, request.match_info["version"])
            rule = await self._rule(conn, request, version)
        return web.json_response(rule.view(version.id))

    async def create(self, request):
        policy.authorize(request, "mgmt:parameter:create")
        rule = rule_from(await read_json(request))
        async with self.store.uow() as uow:
            version = await datastores.version_by_id(uow.conn, request.match_info["version"])
            await version_parameters.put(uow.conn, version.id, rule)
        return web.json_response(rule.view(version.id))

    async def update(self, request):
        policy.authorize(request, "mgmt:parameter:update")
        rule = rule_from(await read_json(request), request.match_info["name"])
        async with self.store.uow() as uow:
            version = await datastores.version_by_id(uow.conn, request.match_info["version"])
            await self._rule(uow.conn, request, version)
            await version_parameters.put(uow.conn, version.id, rule)
        return web.json_response(rule.view(version.id))

    async def delete(self, request):
        policy.authorize(request, "mgmt:parameter:delete")
        async with self.store.uow() as uow:
            version = await datastores.version_by_id(uow.conn, request.match_info["version"])
            await self._rule(uow.conn, request, version)
            await version_parameters.remove(uow.conn, version.id, request.match_info["name"])
        return web.Response(status=204, content_type="application/json")

    def routes(self, app: web.Application, prefix: str) -> None:
        base = f"{prefix}/mgmt/datastores/versions/{{version}}/parameters"
        app.router.add_get(base, self.list)
        app.router.add_post(base, self.create)
        app.router.add_get(f"{base}/{{name}}", self.show)
        app.router.add_put(f"{base}/{{name}}", self.update)
        app.router.add_delete(f"{base}/{{name}}", self.delete)
