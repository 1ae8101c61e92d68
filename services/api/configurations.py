"""Configuration groups (reference §4.11): create, list, show, PATCH (merge), PUT
(replace), delete, the instances using one; attach and detach through
PUT /instances/{id} ("configuration"); an instance's effective configuration.

Values are checked against the version's parameter rules (parameter_rules.py). A
change reaches every instance using the group as a `configure` action: its agent
writes the engine's managed file and applies what the engine can change live; a
change that needs a restart leaves the instance RESTART_REQUIRED until it restarts."""
from __future__ import annotations

import json
import uuid

from aiohttp import web
from sqlalchemy import delete, func, select, update

from . import datastores, groups, instances, operations, parameter_rules, policy, validation, version_parameters, views
from .faults import Fault, bad_request
from .openapi import STR, V, listing, obj, op, param, ref, wrapped
from .rest import accepted, now, paginate, paged, read_json
from .tables import configurations, datastores as datastores_table, instances as instances_table

GROUP = param("configuration", "configuration group id")
INSTANCE = param("instance", "instance id")
SHOW_TIMEOUT_SECONDS = 30
VALUES = {"type": "object", "description": "parameter name -> value, typed per the version's parameter rules"}


def _name(value) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 255:
        raise bad_request("Validation error: configuration['name'] must be 1 to 255 characters.")
    return value


def _description(value) -> str:
    if value is not None and not isinstance(value, str):
        raise bad_request("Validation error: configuration['description'] must be a string.")
    return value or ""


async def _checked(conn, version, values) -> dict:
    """422 naming the parameter when a value breaks the version's rules."""
    try:
        return parameter_rules.validate(await version_parameters.rules_of(conn, version), values)
    except parameter_rules.InvalidValue as exc:
        raise Fault(422, str(exc))


async def _version_and_datastore_name(conn, version_id: str):
    version = await datastores.version_by_id(conn, version_id)
    name = (await conn.execute(select(datastores_table.c.name).where(
        datastores_table.c.id == version.datastore_id))).scalar_one()
    return version, name


async def _users_of(conn, group_id: str) -> list:
    return (await conn.execute(select(instances_table).where(
        instances_table.c.configuration_id == group_id))).all()


async def configure(uow, inst, values: dict, group_id: str | None, previous_group_id: str | None) -> None:
    """Ask the instance's agent to apply `values` (422 while it is busy or not running)."""
    await operations.start(uow, inst, "configure", {
        "values": values, "configuration_id": group_id, "previous_configuration_id": previous_group_id})


@operations.on_failed("configure")
async def _configure_failed(uow, op) -> None:
    """The agent kept the engine as it was: so does the instance's attachment."""
    args = json.loads(op.arguments)
    await uow.conn.execute(update(instances_table).where(
        instances_table.c.id == op.instance_id,
        instances_table.c.configuration_id.is_not_distinct_from(args["configuration_id"])).values(
        configuration_id=args["previous_configuration_id"]))


class Configurations:
    SCHEMAS = {
        "Configuration": obj({
            "id": STR, "name": STR, "description": STR, "created": STR, "updated": STR,
            "datastore_version_id": STR, "datastore_name": STR, "datastore_version_name": STR,
            "datastore_version_number": STR, "values": VALUES,
            "instance_count": {"type": "integer", "description": "instances using it (detail only)"}},
            ["id", "name", "datastore_version_id"]),
        "ConfigurationCreate": obj({"name": STR, "description": STR, "values": VALUES,
                                    "datastore": obj({"type": STR, "version": STR, "version_number": STR})},
                                   ["name", "values"]),
        "ConfigurationUpdate": obj({"name": STR, "description": STR, "values": VALUES}),
        "ConfigurationInstance": obj({"id": STR, "name": STR}, ["id", "name"]),
    }
    PATHS = {
        f"{V}/configurations": {
            "get": op("list configuration groups", 200, listing("configurations", "Configuration", True)),
            "post": op("create a configuration group (Trove answers 200); 422 names a bad value", 200,
                       wrapped("configuration", ref("Configuration")),
                       body=wrapped("configuration", ref("ConfigurationCreate")))},
        f"{V}/configurations/{{configuration}}": {
            "get": op("show a configuration group with its values", 200,
                      wrapped("configuration", ref("Configuration")), (GROUP,)),
            "patch": op("merge values into the group, then apply it to its instances (200, empty body)", 200,
                        None, (GROUP,), body=wrapped("configuration", ref("ConfigurationUpdate"))),
            "put": op("replace the group's values (and name, description), then apply it to its instances", 202,
                      None, (GROUP,), body=wrapped("configuration", ref("ConfigurationUpdate"))),
            "delete": op("delete a configuration group (400 while instances use it)", 202, None, (GROUP,))},
        f"{V}/configurations/{{configuration}}/instances": {"get": op(
            "the instances using a configuration group", 200, listing("instances", "ConfigurationInstance", True),
            (GROUP,))},
        f"{V}/instances/{{instance}}/configuration": {"get": op(
            "the instance's effective configuration, as its engine reports it", 200,
            wrapped("instance", obj({"configuration": VALUES})), (INSTANCE,))},
    }

    def __init__(self, store):
        self.store = store

    def instance_updates(self) -> dict:
        return {"configuration": self.attach_or_detach}

    # -- reading ----------------------------------------------------------------
    async def list(self, request):
        policy.authorize(request, "configuration:index")
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(configurations).where(
                configurations.c.project_id == request["project"]))).all()
            page, next_link = paginate(rows, request)
            docs = [views.configuration(r, *await _version_and_datastore_name(conn, r.datastore_version_id))
                    for r in page]
        return paged("configurations", docs, next_link)

    async def show(self, request):
        policy.authorize(request, "configuration:show")
        async with self.store.engine.connect() as conn:
            group = await groups.find(conn, request["project"], request.match_info["configuration"])
            doc = await self._detail(conn, group)
        return web.json_response({"configuration": doc})

    @staticmethod
    async def _detail(conn, group) -> dict:
        count = (await conn.execute(select(func.count()).select_from(instances_table).where(
            instances_table.c.configuration_id == group.id))).scalar_one()
        return views.configuration(group, *await _version_and_datastore_name(conn, group.datastore_version_id),
                                   detail=True, instance_count=count)

    async def instances(self, request):
        policy.authorize(request, "configuration:instances")
        async with self.store.engine.connect() as conn:
            group = await groups.find(conn, request["project"], request.match_info["configuration"])
            rows = await _users_of(conn, group.id)
        page, next_link = paginate(rows, request)
        return paged("instances", [{"id": r.id, "name": r.name} for r in page], next_link)

    async def effective(self, request):
        """What the engine runs with, for every parameter of the version's rules."""
        policy.authorize(request, "instance:show")
        async with self.store.uow() as uow:
            inst = await instances.find(uow.conn, request)
            rules = await version_parameters.rules_of(uow.conn, await groups.instance_version(uow.conn, inst))
            operation_id = await operations.start(uow, inst, "show_configuration", {
                "names": sorted(r.name for r in rules.values())}, exclusive=False)
        done = await operations.wait(self.store, operation_id, SHOW_TIMEOUT_SECONDS)
        if done is None:
            raise Fault(422, f"Instance {inst.id} did not report its configuration within "
                             f"{SHOW_TIMEOUT_SECONDS} s; try again.")
        if done.state != "done":
            raise bad_request(f"The configuration of instance {inst.id} could not be read: {done.message}")
        reported = json.loads(done.output).get("values", {})
        values = {name: parameter_rules.typed(rules[name.lower()], text) if name.lower() in rules else text
                  for name, text in sorted(reported.items())}
        return web.json_response({"instance": {"configuration": values}})

    # -- changing ---------------------------------------------------------------
    async def create(self, request):
        policy.authorize(request, "configuration:create")
        spec = validation.body_object(await read_json(request), "configuration")
        name, description = _name(spec.get("name")), _description(spec.get("description"))
        if "values" not in spec:
            raise bad_request("Validation error: configuration['values'] is required.")
        ds_spec = spec.get("datastore") or {}
        if not isinstance(ds_spec, dict):
            raise bad_request("Validation error: configuration['datastore'] must be an object.")
        async with self.store.uow() as uow:
            ds = await datastores.find(uow.conn, ds_spec.get("type") or "postgresql")
            version_name = ds_spec.get("version") or ds.default_version_id
            if not version_name:
                raise bad_request(f"Datastore {ds.name} has no default version; name one.")
            version = await datastores.find_version(uow.conn, ds.id, version_name, missing_status=400)
            values = await _checked(uow.conn, version, spec["values"])
            group_id, created = str(uuid.uuid4()), now()
            await uow.conn.execute(configurations.insert().values(
                id=group_id, project_id=request["project"], name=name, description=description,
                datastore_version_id=version.id, values=json.dumps(values), created_at=created,
                updated_at=created))
            group = await groups.find(uow.conn, request["project"], group_id)
            doc = await self._detail(uow.conn, group)
        return web.json_response({"configuration": doc})

    async def patch(self, request):
        """Trove: the given values are merged in; 200 with an empty body."""
        policy.authorize(request, "configuration:update")
        spec = validation.body_object(await read_json(request), "configuration")
        async with self.store.uow() as uow:
            group = await groups.find(uow.conn, request["project"], request.match_info["configuration"])
            version = await datastores.version_by_id(uow.conn, group.datastore_version_id)
            values = {**groups.values_of(group), **await _checked(uow.conn, version, spec.get("values", {}))}
            await self._change(uow, group, {"values": values})
        return web.Response(status=200, content_type="application/json")

    async def put(self, request):
        """Trove: the values are replaced, and the name and description when given."""
        policy.authorize(request, "configuration:update")
        spec = validation.body_object(await read_json(request), "configuration")
        if "values" not in spec:
            raise bad_request("Validation error: configuration['values'] is required.")
        async with self.store.uow() as uow:
            group = await groups.find(uow.conn, request["project"], request.match_info["configuration"])
            version = await datastores.version_by_id(uow.conn, group.datastore_version_id)
            changes = {"values": await _checked(uow.conn, version, spec["values"])}
            if "name" in spec:
                changes["name"] = _name(spec["name"])
            if "description" in spec:
                changes["description"] = _description(spec["description"])
            await self._change(uow, group, changes)
        return accepted()

    @staticmethod
    async def _change(uow, group, changes: dict) -> None:
        """Store the change and, when the values changed, apply them to every instance
        using the group; one of them busy (422) changes nothing."""
        values = changes["values"]
        await uow.conn.execute(update(configurations).where(configurations.c.id == group.id).values(
            updated_at=now(), **{**changes, "values": json.dumps(values)}))
        if values != groups.values_of(group):
            for inst in await _users_of(uow.conn, group.id):
                await configure(uow, inst, values, group.id, group.id)

    async def delete(self, request):
        policy.authorize(request, "configuration:delete")
        async with self.store.uow() as uow:
            group = await groups.find(uow.conn, request["project"], request.match_info["configuration"])
            users = await _users_of(uow.conn, group.id)
            if users:
                raise bad_request(f"Configuration group {group.id} is attached to {len(users)} instance(s) "
                                  f"({', '.join(sorted(u.id for u in users))}); detach it first.")
            await uow.conn.execute(delete(configurations).where(configurations.c.id == group.id))
        return accepted()

    async def attach_or_detach(self, request, uow, inst, value) -> None:
        """PUT /instances/{id} {"instance": {"configuration": id | null}}."""
        if value is None:
            if inst.configuration_id:
                await configure(uow, inst, {}, None, inst.configuration_id)
                await self._attach(uow, inst, None)
            return
        if not isinstance(value, str) or not value:
            raise bad_request("Validation error: instance['configuration'] must be a configuration group id "
                              "or null.")
        group = await groups.attachable(uow.conn, request["project"], value,
                                        await groups.instance_version(uow.conn, inst))
        if inst.configuration_id:
            raise bad_request(f"Instance {inst.id} already has configuration group {inst.configuration_id} "
                              "attached; detach it first.")
        await configure(uow, inst, groups.values_of(group), group.id, None)
        await self._attach(uow, inst, group.id)

    @staticmethod
    async def _attach(uow, inst, group_id: str | None) -> None:
        await uow.conn.execute(update(instances_table).where(instances_table.c.id == inst.id).values(
            configuration_id=group_id, updated_at=now()))

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/configurations", self.list)
        app.router.add_post(f"{prefix}/configurations", self.create)
        app.router.add_get(f"{prefix}/configurations/{{configuration}}", self.show)
        app.router.add_patch(f"{prefix}/configurations/{{configuration}}", self.patch)
        app.router.add_put(f"{prefix}/configurations/{{configuration}}", self.put)
        app.router.add_delete(f"{prefix}/configurations/{{configuration}}", self.delete)
        app.router.add_get(f"{prefix}/configurations/{{configuration}}/instances", self.instances)
        app.router.add_get(f"{prefix}/instances/{{instance}}/configuration", self.effective)

