"""Instances (reference §4.3–4.7): list, show, create, delete, update (PUT/PATCH)
and actions (POST .../action). Other route groups add instance actions and update
keys of their own (resize, configuration, replica_of, ...) through
`instance_actions` / `instance_updates`; this module runs the ones that are the
instance's own (restart, reset_status, rename)."""
from __future__ import annotations

import json
import logging
import uuid
from typing import Awaitable, Callable

from aiohttp import web
from sqlalchemy import select, update

from plumbing import topics as T
from plumbing.envelope import Event
from plumbing.logs import log

from . import (access, accounts_view, backups_view, datastores, flavors, groups, instance_views, naming, operations,
               policy, quotas, replication, validation, views)
from .faults import Fault, bad_request
from .openapi import BOOL, LINKS, PAGE, STR, V, listing, obj, op, param, query, ref, wrapped
from .rest import accepted, base_url, now, paginate_query, paged, read_json, reading
from .tables import instances, operations as operations_table, pending_credentials

SOURCE = "api"
logger = logging.getLogger("api")
INSTANCE = param("instance", "instance id")

# handler(request, uow, instance row, value from the body) -> a response, or None for Trove's empty 202
ActionHandler = Callable[[web.Request, object, object, object], Awaitable[web.Response | None]]
# `replication` is Coffer's extension: a replica set's failover switch and synchronous mode
PUT_KEYS = {"name", "configuration", "replica_of", "access", "datastore_version", "replication"}
PATCH_KEYS = {"name", "configuration", "replica_of", "slave_of", "datastore_version", "replication"}


async def find(conn, request, instance_id: str | None = None):
    """The caller's instance named in the path; 404 for any other project's, except
    to an admin, who reaches any project's instance by id (as in Trove)."""
    return await policy.visible_row(conn, request, instances, instance_id or request.match_info["instance"],
                                    "Instance")


class Instances:
    SCHEMAS = {
        "Instance": obj({
            "id": STR, "name": STR, "links": LINKS,
            "status": {"type": "string", "description": "BUILD, ACTIVE, REBOOT, RESIZE, ERROR, SHUTDOWN, ... "
                                                        "(Trove's values)"},
            "operating_status": {"type": "string", "description": "HEALTHY, RESTARTING, UNHEALTHY, ... or \"\""},
            "flavor": obj({"id": STR, "links": LINKS}), "datastore": obj(
                {"type": STR, "version": STR, "version_number": STR}),
            "region": STR, "access": ref("Access"), "volume": obj({"size": {"type": "integer"}, "used": {
                "type": "number", "description": "GB in use, from the agent's heartbeats (once reported)"}}),
            "ip": {"type": "array", "items": STR}, "addresses": {"type": "array", "items": obj(
                {"address": STR, "type": {"type": "string", "enum": ["private", "public"]},
                 "port": {"type": "integer", "description": "a public address's port, when not the engine's own"}},
                ["address", "type"])},
            "created": STR, "updated": STR, "locality": STR,
            "configuration": obj({"id": STR, "name": STR, "links": LINKS}),
            "hostname": {"type": "string", "description": "a replica set's stable endpoint (the current primary)"},
            "replica_of": obj({"id": STR, "links": LINKS}),
            "replicas": {"type": "array", "items": obj({"id": STR, "links": LINKS})},
            "replication": obj({"failover_enabled": BOOL, "synchronous": BOOL}),
            "fault": obj({"message": STR, "created": STR, "details": STR})},
            ["id", "name", "status", "operating_status", "flavor", "datastore"]),
        "InstanceCreate": obj({
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
            "flavorRef": {"oneOf": [STR, {"type": "integer"}]},
            "volume": obj({"size": {"oneOf": [{"type": "integer", "minimum": 1}, STR]},
                           "type": {"type": ["string", "null"]}}, ["size"]),
            "datastore": obj({"type": STR, "version": STR, "version_number": STR}),
            "databases": {"type": "array", "items": obj({"name": STR, "character_set": STR, "collate": STR},
                                                         ["name"])},
            "users": {"type": "array", "items": obj({"name": STR, "password": STR, "host": STR, "databases": {
                "type": "array", "items": obj({"name": STR}, ["name"])}}, ["name", "password"])},
            "availability_zone": STR, "nics": {"type": "array"}, "access": ref("Access"),
            "replica_of": STR, "replica_count": {"type": "integer", "minimum": 1, "maximum": 3},
            "restorePoint": obj({
                "backupRef": {"type": "string", "description": "the backup (full or incremental) to start from"},
                "restore_time": {"type": "string", "description": "Coffer: ISO-8601 moment to recover to "
                                                                  "(point-in-time restore)"}}, ["backupRef"]),
            "configuration": {"type": "string", "description": "a configuration group to attach"}},
            ["name", "flavorRef", "volume"]),
        "InstanceUpdate": obj({"name": STR, "configuration": {"type": ["string", "null"]},
                               "replication": obj({"failover_enabled": BOOL, "synchronous": BOOL}),
                               "replica_of": {"type": ["string", "null"]}, "access": ref("Access"),
                               "datastore_version": STR},
                              ),
        "Access": obj({
            "is_public": {"type": "boolean", "description": "reachable on the host's public address (the local "
                                                            "driver: COFFER_PUBLIC_ADDRESS, else the host's own)"},
            "allowed_cidrs": {"type": "array", "minItems": 1, "uniqueItems": True,
                              "items": {"type": "string",
                                        "description": "an IPv4 or IPv6 network, e.g. 203.0.113.0/24"},
                              "description": "who may connect to the public address; default everyone "
                                             "(0.0.0.0/0 and ::/0)"}}),
        "InstanceAction": {"type": "object", "minProperties": 1, "maxProperties": 1,
                           "description": "exactly one action: restart, resize, reset_status, stop, start, ...",
                           "additionalProperties": {"type": "object"}},
    }
    PATHS = {
        f"{V}/instances": {
            "get": op("list instances (list view)", 200, listing("instances", "Instance", True),
                      (*PAGE, query("include_clustered", "true or false, any case"))),
            "post": op("create an instance (Trove answers 200)", 200, wrapped("instance", ref("Instance")),
                       body=wrapped("instance", ref("InstanceCreate")))},
        f"{V}/instances/detail": {"get": op("list instances (detail view)", 200,
                                            listing("instances", "Instance", True))},
        f"{V}/instances/{{instance}}": {
            "get": op("show an instance", 200, wrapped("instance", ref("Instance")), (INSTANCE,)),
            "put": op("rename, attach/detach a configuration, detach a replica, change access", 202, None,
                      (INSTANCE,), body=wrapped("instance", ref("InstanceUpdate"))),
            "patch": op("as PUT; the clients send upgrades (datastore_version) this way", 202, None, (INSTANCE,),
                        body=wrapped("instance", ref("InstanceUpdate"))),
            "delete": op("delete an instance (allowed in BUILD too)", 202, None, (INSTANCE,))},
        f"{V}/instances/{{instance}}/action": {"post": op(
            "an instance action: restart, resize, reset_status, ... (202, empty body)", 202, None, (INSTANCE,),
            body=ref("InstanceAction"))},
    }

    def __init__(self, store, actions: dict[str, ActionHandler], updates: dict[str, ActionHandler]):
        self.store = store
        self.actions = {"restart": self.restart, "reset_status": self.reset_status, **actions}
        self.updates = updates

    # -- reading -----------------------------------------------------------
    async def list(self, request, detail: bool = False):
        policy.authorize(request, "instance:index")
        kept = request.app["instance_views"]
        key = ("list", request.path_qs, base_url(request))  # the path names the project and the view
        view = kept.get(key)
        if view is not None:
            return instance_views.serve(view[1])
        moment = kept.moment()
        async with reading(self.store) as conn:
            page, next_link = await paginate_query(conn, select(instances).where(
                instances.c.project_id == request["project"]), instances.c.id, request)
            group_names = await groups.names(conn, [r.configuration_id for r in page]) if detail else {}
            replicas = await replication.replicas_of(conn, [r.id for r in page])
        page.sort(key=lambda r: r.created_at, reverse=True)  # Trove: the page newest first
        response = paged("instances", [views.instance(r, base_url(request), request["project"], detail,
                                                      group_names, replicas) for r in page], next_link)
        kept.keep(moment, key, request["project"], response.body)
        return response

    async def list_detail(self, request):
        return await self.list(request, detail=True)

    async def show(self, request):
        policy.authorize(request, "instance:show")
        kept = request.app["instance_views"]
        key = ("show", request.match_info["instance"], base_url(request))
        view = kept.get(key)
        if view is not None:
            owner, body = view
            policy.check_visible(request, owner, "Instance", key[1])
            return instance_views.serve(body)
        moment = kept.moment()
        async with reading(self.store) as conn:
            row = await find(conn, request)
            group_names = await groups.names(conn, [row.configuration_id])
            replicas = await replication.replicas_of(conn, [row.id])
        response = web.json_response({"instance": views.instance(row, base_url(request), row.project_id, True,
                                                                 group_names, replicas)})
        kept.keep(moment, key, row.project_id, response.body)
        return response

    # -- create and delete ---------------------------------------------------
    async def create(self, request):
        policy.authorize(request, "instance:create")
        spec = validation.body_object(await read_json(request), "instance")
        name = validation.instance_name(spec.get("name"))
        if spec.get("replica_of"):
            return await replication.create_replicas(request, self.store, spec, name)
        if "replica_count" in spec:
            raise bad_request("Validation error: replica_count is only valid with replica_of.")
        flavor_id = validation.flavor_ref(spec.get("flavorRef"))
        volume_gb = validation.volume_size(spec.get("volume"))
        wanted_access = access.requested(spec["access"]) if spec.get("access") is not None else None
        ds_spec = spec.get("datastore") or {}
        if not isinstance(ds_spec, dict):
            raise bad_request("Validation error: instance['datastore'] must be an object.")
        async with self.store.uow() as uow:
            flavor = await flavors.find(uow.conn, flavor_id)
            if flavor is None:
                raise bad_request(f"Flavor {flavor_id} could not be found.")
            # a restore's datastore and version are the backup's unless the request names them
            restore, restore_time = await backups_view.restore_source(uow.conn, request, spec.get("restorePoint"))
            ds = await datastores.find(uow.conn, ds_spec.get("type") or (restore.datastore if restore
                                                                          else "postgresql"))
            version_name = ds_spec.get("version") or (restore.datastore_version if restore
                                                      else ds.default_version_id)
            if not version_name:
                raise bad_request(f"Datastore {ds.name} has no default version; name one.")
            version = await datastores.find_version(uow.conn, ds.id, version_name, missing_status=400)
            datastores.check_usable(version, ds.name)
            if restore:
                backups_view.check_restorable(restore, ds.name, version.name, restore_time)
                await backups_view.check_fits(uow.conn, restore, volume_gb)
            await quotas.check(uow.conn, request["project"],
                               {"instances": 1, "volumes": volume_gb, "ram": flavor.ram_mb})
            rules = naming.rules_for(ds.name)
            dbs = validation.databases(spec.get("databases"), rules, ds.name)
            users = validation.users(spec.get("users"), {d["name"] for d in dbs}, rules)
            group = (await groups.attachable(uow.conn, request["project"], spec["configuration"], version)
                     if spec.get("configuration") else None)
            instance_id, created = str(uuid.uuid4()), now()
            await uow.conn.execute(instances.insert().values(
                id=instance_id, project_id=request["project"], name=name, status="BUILD", operating_status="",
                flavor_id=flavor.id, volume_gb=volume_gb, datastore=ds.name, datastore_version=version.name,
                datastore_version_number=version.version, created_at=created, updated_at=created,
                configuration_id=group.id if group else None,
                access=json.dumps(wanted_access) if wanted_access else None))
            if users:
                await uow.conn.execute(pending_credentials.insert().values(
                    instance_id=instance_id, box=request.app["vault"].lock(
                        {u["name"]: u["password"] for u in users})))
            requested_users = [{k: u[k] for k in ("name", "host", "databases")} for u in users]
            await accounts_view.remember_requested(uow.conn, instance_id, dbs, requested_users)
            await uow.emit(T.INSTANCE_REQUESTS, Event(
                "coffer.instance.create_requested.v1", instance_id, source=SOURCE, project=request["project"],
                data={"instance_id": instance_id, "project_id": request["project"], "name": name,
                      "flavor": {"id": flavor.id, "ram_mb": flavor.ram_mb, "vcpus": flavor.vcpus,
                                 "disk_gb": flavor.disk_gb},
                      "volume_gb": volume_gb, "datastore": ds.name, "datastore_version": version.name,
                      "availability_zone": spec.get("availability_zone"), "databases": dbs,
                      "users": requested_users,
                      "configuration": group.values if group else "{}",
                      "restore_backup_id": restore.id if restore else None, "restore_time": restore_time,
                      "access": json.dumps(wanted_access) if wanted_access else ""}))
            row = (await uow.conn.execute(select(instances).where(instances.c.id == instance_id))).one()
        log(logger, logging.INFO, "instance requested", instance_id=instance_id, project=request["project"])
        return web.json_response({"instance": views.instance(row, base_url(request), request["project"], True,
                                                             {group.id: group.name} if group else {})})

    async def delete(self, request):
        policy.authorize(request, "instance:delete")
        async with self.store.uow() as uow:
            row = await find(uow.conn, request)
            await replication.refuse_deleting_a_primary(uow.conn, row)
            if row.task != "delete":
                await uow.conn.execute(update(instances).where(instances.c.id == row.id).values(
                    status="SHUTDOWN", operating_status="", task="delete", updated_at=now()))
                await uow.emit(T.INSTANCE_REQUESTS, Event(
                    "coffer.instance.delete_requested.v1", row.id, source=SOURCE, project=row.project_id,
                    data={"instance_id": row.id, "project_id": row.project_id}))
        return accepted()

    # -- update (PUT / PATCH) --------------------------------------------------
    async def put(self, request):
        return await self._update(request, PUT_KEYS)

    async def patch(self, request):
        return await self._update(request, PATCH_KEYS)

    async def _update(self, request, allowed_keys: set[str]):
        policy.authorize(request, "instance:update")
        spec = validation.body_object(await read_json(request), "instance", allowed_keys)
        if not spec:
            spec = {"configuration": None}  # Trove's legacy form of a detach
        others = [k for k in spec if k != "name"]
        if len(others) > 1:
            raise bad_request("Only one attribute (except 'name') is allowed to update.")
        changes = [("replica_of" if k == "slave_of" else k, spec[k]) for k in others]
        for key, _value in changes:
            if key not in self.updates:
                raise Fault(501, f"Changing '{key}' of an instance is not available yet in this Coffer release.")
        async with self.store.uow() as uow:
            inst = await find(uow.conn, request)
            if "name" in spec:
                await self.rename(inst, uow, spec["name"])
            for key, value in changes:
                await self.updates[key](request, uow, inst, value)
        return accepted()

    @staticmethod
    async def rename(inst, uow, value) -> None:
        name = validation.instance_name(value)
        await uow.conn.execute(update(instances).where(instances.c.id == inst.id).values(
            name=name, updated_at=now()))

    # -- actions ---------------------------------------------------------------
    async def action(self, request):
        body = await read_json(request)
        if not isinstance(body, dict) or not body:
            raise bad_request("Invalid request body.")
        name = next(iter(body))
        handler = self.actions.get(name)
        if handler is None:
            raise bad_request(f"Invalid instance action: {name!r}. Known: {', '.join(sorted(self.actions))}.")
        policy.authorize(request, "instance:reset_status" if name == "reset_status" else "instance:action")
        async with self.store.uow() as uow:
            inst = await find(uow.conn, request)
            response = await handler(request, uow, inst, body[name])
        return response or accepted()

    async def restart(self, request, uow, inst, value) -> None:
        if value not in ({}, None):
            raise bad_request("Validation error: restart takes no arguments.")
        await operations.start(uow, inst, "restart", {}, busy_status="REBOOT",
                               allowed=operations.RUNNING + ("ERROR",))

    async def reset_status(self, request, uow, inst, value) -> None:
        """Admin: end whatever the instance is doing (its running operations fail) and
        show ERROR, so that it can be deleted or acted on again."""
        await uow.conn.execute(update(operations_table).where(
            operations_table.c.instance_id == inst.id, operations_table.c.state == "running").values(
            state="failed", message="The operation was ended by an administrator's reset_status.",
            finished_at=now()))
        await uow.conn.execute(update(instances).where(instances.c.id == inst.id).values(
            task=None, status="ERROR", operating_status="ERROR", updated_at=now()))

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/instances", self.list)
        app.router.add_get(f"{prefix}/instances/detail", self.list_detail)
        app.router.add_post(f"{prefix}/instances", self.create)
        app.router.add_get(f"{prefix}/instances/{{instance}}", self.show)
        app.router.add_put(f"{prefix}/instances/{{instance}}", self.put)
        app.router.add_patch(f"{prefix}/instances/{{instance}}", self.patch)
        app.router.add_delete(f"{prefix}/instances/{{instance}}", self.delete)
        app.router.add_post(f"{prefix}/instances/{{instance}}/action", self.action)
