"""aiohttp application: Trove v1.0 routes for versions, flavors, datastores and instances."""
from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timezone

from aiohttp import web
from opentelemetry import trace
from sqlalchemy import or_, select, update

from plumbing import metrics, tracing
from plumbing import topics as T
from plumbing.envelope import Event
from plumbing.logs import log
from plumbing.outbox import Store

from . import auth, naming, openapi, quotas, validation, views
from .faults import Fault, bad_request, not_found
from .quotas import Quotas
from .subscriptions import Subscriptions
from .tables import datastore_versions, datastores, flavors, instances, pending_credentials
from .vault import Vault

SOURCE = "api"
PAGE_SIZE = 20
logger = logging.getLogger("api")


def now() -> datetime:
    return datetime.now(timezone.utc)


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def query_bool(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


@web.middleware
async def faults_middleware(request: web.Request, handler):
    request_id = f"req-{uuid.uuid4()}"
    tracer = request.app["tracer"]
    resource = request.match_info.route.resource
    route = getattr(resource, "canonical", "") or ""  # "" when no route matched
    started = time.perf_counter()
    # a server span per request, continuing the caller's trace when it sends a traceparent;
    # a Fault is an answer, not an error of the span: only 5xx mark it failed
    with tracer.start_as_current_span(f"{request.method} {route}".strip(), context=tracing.incoming(request.headers),
                                      kind=trace.SpanKind.SERVER, record_exception=False,
                                      set_status_on_exception=False, attributes={
                                          "http.request.method": request.method, "url.path": request.path,
                                          "http.route": route, "coffer.request_id": request_id}) as span:
        try:
            response = await handler(request)
        except Fault as fault:
            response = fault
        except web.HTTPNotFound:
            response = not_found()
        except web.HTTPMethodNotAllowed:
            response = not_found()  # Trove has no 405
        except Exception:
            log(logger, logging.ERROR, "unhandled error", request_id=request_id, path=request.path,
                exc_info=True)
            response = Fault(500, f"Internal Server Error. Please keep this ID to help us figure out what "
                                  f"went wrong: ({request_id}).")
        response.headers["x-openstack-request-id"] = request_id
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(trace.Status(trace.StatusCode.ERROR))
        metrics.http_server_duration.record(time.perf_counter() - started, {
            "http.request.method": request.method, "http.route": route or "unmatched",
            "http.response.status_code": response.status})
        if isinstance(response, web.HTTPException):
            raise response
        return response


@web.middleware
async def auth_middleware(request: web.Request, handler):
    project = request.match_info.get("project")
    if project is None:
        return await handler(request)
    token = request.headers.get("X-Auth-Token")
    if not token:
        raise Fault(401, "Authentication required: send a token in X-Auth-Token.")
    cache = request.app["token_cache"]
    identity = cache.get(token)
    if identity is None:
        async with request.app["store"].engine.connect() as conn:
            row = await auth.lookup(conn, token)
        if row is None:
            raise Fault(401, "The token is not valid.")
        identity = cache[token] = (row.project_id, row.role)
    if identity[0] != project:
        raise Fault(403, f"User with tenant id {identity[0]} cannot access this resource.")
    request["project"], request["role"] = identity
    return await handler(request)


async def read_json(request: web.Request):
    if not request.can_read_body:
        raise bad_request("Invalid request body.")
    if request.content_type not in ("application/json", "application/vnd.openstack.trove+json"):
        raise Fault(415, f"Unsupported Content-Type {request.content_type!r}; send application/json.")
    try:
        return await request.json()
    except json.JSONDecodeError as exc:
        raise bad_request(f"Malformed request body: {exc}")


def paginate(rows: list, request: web.Request, key=lambda r: r.id):
    """Trove pagination: ids ascending, `marker` = last id seen, a next link only when more exist."""
    try:
        limit = min(int(request.query.get("limit", PAGE_SIZE)), PAGE_SIZE)
    except ValueError:
        raise bad_request("limit must be a whole number.")
    if limit < 1:
        raise bad_request("limit must be at least 1.")
    marker = request.query.get("marker")
    ordered = sorted(rows, key=key)
    if marker:
        ordered = [r for r in ordered if key(r) > marker]
    page, more = ordered[:limit], len(ordered) > limit
    next_link = None
    if more:
        url = request.url.update_query(marker=key(page[-1])).with_scheme("https")
        next_link = [{"rel": "next", "href": str(url)}]
    return page, next_link


class Api:
    def __init__(self, store: Store):
        self.store = store
        self.vault = Vault()

    # -- versions, flavors, datastores --------------------------------------
    async def versions(self, request):
        return web.json_response({"versions": [{
            "id": "v1.0", "status": "CURRENT", "updated": "2012-08-01T00:00:00Z",
            "links": [{"rel": "self", "href": f"{base_url(request)}/v1.0/"}]}]})

    async def list_flavors(self, request):
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(flavors).order_by(flavors.c.ram_mb))).all()
        return web.json_response({"flavors": [views.flavor(r, base_url(request), request["project"]) for r in rows]})

    async def _flavor(self, conn, flavor_id: str):
        return (await conn.execute(select(flavors).where(flavors.c.id == flavor_id))).first()

    async def show_flavor(self, request):
        async with self.store.engine.connect() as conn:
            row = await self._flavor(conn, request.match_info["flavor"])
        if row is None:
            raise not_found(f"Flavor {request.match_info['flavor']} could not be found.")
        return web.json_response({"flavor": views.flavor(row, base_url(request), request["project"])})

    async def _datastore(self, conn, id_or_name: str):
        row = (await conn.execute(select(datastores).where(
            or_(datastores.c.id == id_or_name, datastores.c.name == id_or_name)))).first()
        if row is None:
            raise not_found(f"Datastore '{id_or_name}' cannot be found.")
        return row

    async def _versions(self, conn, datastore_id: str):
        return (await conn.execute(select(datastore_versions).where(
            datastore_versions.c.datastore_id == datastore_id).order_by(datastore_versions.c.name))).all()

    async def list_datastores(self, request):
        b, p = base_url(request), request["project"]
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(datastores).order_by(datastores.c.name))).all()
            docs = [views.datastore(r, await self._versions(conn, r.id), b, p) for r in rows]
        return web.json_response({"datastores": docs})

    async def show_datastore(self, request):
        async with self.store.engine.connect() as conn:
            row = await self._datastore(conn, request.match_info["datastore"])
            doc = views.datastore(row, await self._versions(conn, row.id), base_url(request), request["project"])
        return web.json_response({"datastore": doc})

    async def list_versions(self, request):
        async with self.store.engine.connect() as conn:
            row = await self._datastore(conn, request.match_info["datastore"])
            versions = await self._versions(conn, row.id)
        return web.json_response({"versions": [views.version(v, base_url(request), request["project"])
                                               for v in versions]})

    async def _version(self, conn, datastore_id: str, id_or_name: str, by_name_status: int = 404):
        rows = (await conn.execute(select(datastore_versions).where(
            datastore_versions.c.datastore_id == datastore_id,
            or_(datastore_versions.c.id == id_or_name, datastore_versions.c.name == id_or_name)))).all()
        if not rows:
            raise Fault(by_name_status, f"Datastore version '{id_or_name}' cannot be found.")
        return rows[0]

    async def show_version(self, request):
        async with self.store.engine.connect() as conn:
            ds = await self._datastore(conn, request.match_info["datastore"])
            row = await self._version(conn, ds.id, request.match_info["version"])
        return web.json_response({"version": views.version(row, base_url(request), request["project"])})

    async def show_version_by_id(self, request):
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(select(datastore_versions).where(
                datastore_versions.c.id == request.match_info["version"]))).first()
        if row is None:
            raise not_found(f"Datastore version '{request.match_info['version']}' cannot be found.")
        return web.json_response({"version": views.version(row, base_url(request), request["project"])})

    # -- instances ----------------------------------------------------------
    async def _instance(self, conn, request):
        row = (await conn.execute(select(instances).where(
            instances.c.id == request.match_info["instance"],
            instances.c.project_id == request["project"]))).first()
        if row is None:
            raise not_found(f"Instance {request.match_info['instance']} could not be found.")
        return row

    async def list_instances(self, request, detail: bool = False):
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(instances).where(
                instances.c.project_id == request["project"]))).all()
        page, next_link = paginate(rows, request)
        page.sort(key=lambda r: r.created_at, reverse=True)  # Trove: the page newest first
        doc = {"instances": [views.instance(r, base_url(request), request["project"], detail) for r in page]}
        if next_link:
            doc["links"] = next_link
        return web.json_response(doc)

    async def list_instances_detail(self, request):
        return await self.list_instances(request, detail=True)

    async def show_instance(self, request):
        async with self.store.engine.connect() as conn:
            row = await self._instance(conn, request)
        return web.json_response({"instance": views.instance(row, base_url(request), request["project"], True)})

    async def create_instance(self, request):
        if request["role"] == "reader":
            raise Fault(403, "Policy doesn't allow instance:create to be performed.")
        spec = validation.body_object(await read_json(request), "instance")
        name = validation.instance_name(spec.get("name"))
        if spec.get("replica_of") or spec.get("restorePoint"):
            raise Fault(501, "Replicas and restores are not available yet in this Coffer release.")
        flavor_id = validation.flavor_ref(spec.get("flavorRef"))
        volume_gb = validation.volume_size(spec.get("volume"))
        ds_spec = spec.get("datastore") or {}
        if not isinstance(ds_spec, dict):
            raise bad_request("Validation error: instance['datastore'] must be an object.")
        async with self.store.uow() as uow:
            flavor = await self._flavor(uow.conn, flavor_id)
            if flavor is None:
                raise bad_request(f"Flavor {flavor_id} could not be found.")
            ds = await self._datastore(uow.conn, ds_spec.get("type") or "postgresql")
            version_name = ds_spec.get("version") or ds.default_version_id
            if not version_name:
                raise bad_request(f"Datastore {ds.name} has no default version; name one.")
            version = await self._version(uow.conn, ds.id, version_name, by_name_status=400)
            await quotas.check(uow.conn, request["project"],
                               {"instances": 1, "volumes": volume_gb, "ram": flavor.ram_mb})
            rules = naming.rules_for(ds.name)
            dbs = validation.databases(spec.get("databases"), rules, ds.name)
            users = validation.users(spec.get("users"), {d["name"] for d in dbs}, rules)
            instance_id, created = str(uuid.uuid4()), now()
            await uow.conn.execute(instances.insert().values(
                id=instance_id, project_id=request["project"], name=name, status="BUILD", operating_status="",
                flavor_id=flavor.id, volume_gb=volume_gb, datastore=ds.name, datastore_version=version.name,
                datastore_version_number=version.version, created_at=created, updated_at=created))
            if users:
                await uow.conn.execute(pending_credentials.insert().values(
                    instance_id=instance_id, box=self.vault.lock({u["name"]: u["password"] for u in users})))
            await uow.emit(T.INSTANCE_REQUESTS, Event(
                "coffer.instance.create_requested.v1", instance_id, source=SOURCE, project=request["project"],
                data={"instance_id": instance_id, "project_id": request["project"], "name": name,
                      "flavor": {"id": flavor.id, "ram_mb": flavor.ram_mb, "vcpus": flavor.vcpus,
                                 "disk_gb": flavor.disk_gb},
                      "volume_gb": volume_gb, "datastore": ds.name, "datastore_version": version.name,
                      "availability_zone": spec.get("availability_zone"), "databases": dbs,
                      "users": [{k: u[k] for k in ("name", "host", "databases")} for u in users]}))
            row = (await uow.conn.execute(select(instances).where(instances.c.id == instance_id))).one()
        log(logger, logging.INFO, "instance requested", instance_id=instance_id, project=request["project"])
        return web.json_response({"instance": views.instance(row, base_url(request), request["project"], True)})

    async def delete_instance(self, request):
        if request["role"] == "reader":
            raise Fault(403, "Policy doesn't allow instance:delete to be performed.")
        async with self.store.uow() as uow:
            row = await self._instance(uow.conn, request)
            if row.status != "SHUTDOWN":
                await uow.conn.execute(update(instances).where(instances.c.id == row.id).values(
                    status="SHUTDOWN", operating_status="", updated_at=now()))
                await uow.emit(T.INSTANCE_REQUESTS, Event(
                    "coffer.instance.delete_requested.v1", row.id, source=SOURCE, project=row.project_id,
                    data={"instance_id": row.id, "project_id": row.project_id}))
        return web.Response(status=202, content_type="application/json")


def build_app(store: Store, tracer) -> web.Application:
    api = Api(store)
    app = web.Application(middlewares=[faults_middleware, auth_middleware], client_max_size=1024 ** 2)
    app["store"], app["tracer"], app["token_cache"] = store, tracer, {}
    p = "/v1.0/{project}"
    app.router.add_get("/", api.versions)
    app.router.add_get("/openapi.json", lambda _request: web.json_response(openapi.document()))
    app.router.add_get(f"{p}/flavors", api.list_flavors)
    app.router.add_get(f"{p}/flavors/{{flavor}}", api.show_flavor)
    app.router.add_get(f"{p}/datastores", api.list_datastores)
    app.router.add_get(f"{p}/datastores/versions/{{version}}", api.show_version_by_id)
    app.router.add_get(f"{p}/datastores/{{datastore}}", api.show_datastore)
    app.router.add_get(f"{p}/datastores/{{datastore}}/versions", api.list_versions)
    app.router.add_get(f"{p}/datastores/{{datastore}}/versions/{{version}}", api.show_version)
    app.router.add_get(f"{p}/instances", api.list_instances)
    app.router.add_get(f"{p}/instances/detail", api.list_instances_detail)
    app.router.add_post(f"{p}/instances", api.create_instance)
    app.router.add_get(f"{p}/instances/{{instance}}", api.show_instance)
    app.router.add_delete(f"{p}/instances/{{instance}}", api.delete_instance)
    Subscriptions(store, read_json).routes(app, p)
    Quotas(store, read_json).routes(app, p)
    return app
