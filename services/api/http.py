"""The aiohttp application: Trove's error and auth conventions as middlewares, and
the route groups, each a module of its own."""
from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timezone

from aiohttp import web
from opentelemetry import trace
from sqlalchemy.exc import DBAPIError

from plumbing import metrics, tracing
from plumbing.logs import log
from plumbing.outbox import Store

from . import audit, identity, openapi, policy, ratelimit
from .accounts import Accounts
from .backup_schedules import BackupSchedules
from .backup_strategies import BackupStrategies
from .backups import Backups
from .clusters import Clusters
from .configurations import Configurations
from .datastores import Datastores
from .faults import FAULT_NAMES, Fault, not_found, rate_limited
from .flavors import Flavors
from .guest_logs import GuestLogs
from .instance_views import InstanceViews
from .instances import Instances
from .mgmt import Mgmt
from .mgmt_guest import MgmtGuest
from .mgmt_parameters import MgmtParameters
from .mgmt_versions import MgmtVersions
from .power import Power
from .quotas import Quotas
from .replication import Replication
from .access import Access
from .resize import Resize
from .schedules import Schedules
from .instance_ssl import Ssl
from .rest import base_url
from .subscriptions import Subscriptions
from .upgrade import Upgrade
from .vault import Vault

logger = logging.getLogger("api")
READS = frozenset({"GET", "HEAD"})


@web.middleware
async def faults_middleware(request: web.Request, handler):
    request["received_at"] = datetime.now(timezone.utc)
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
            response = await answer_once_more_on_a_dead_connection(request, handler)
        except Fault as fault:
            response = fault
        except web.HTTPNotFound:
            response = not_found()
        except web.HTTPMethodNotAllowed:
            response = not_found()  # Trove has no 405
        except web.HTTPException as exc:  # aiohttp's own refusals (a body too large, ...) in Trove's shape
            response = Fault(exc.status, exc.reason) if exc.status in FAULT_NAMES else exc
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
        if request.method in audit.MUTATING and request.app["store"] is not None:
            await audit.record(request, response.status, request_id, route)
        if isinstance(response, web.HTTPException):
            raise response
        return response


async def answer_once_more_on_a_dead_connection(request: web.Request, handler):
    """A read that met a pooled connection the database had closed (a restart) runs
    once more: the pool dropped the dead connections, the next one is fresh. A
    write is not repeated (it may have been committed before the connection died)."""
    try:
        return await handler(request)
    except DBAPIError as exc:
        if not exc.connection_invalidated or request.method not in READS:
            raise
    return await handler(request)


@web.middleware
async def auth_middleware(request: web.Request, handler):
    """Every /v1.0/{project} request: a valid token (401), for the project in the
    URL (403, as Trove), a role that may read (GET) or write (anything else),
    within the project's rate limits (413 with Retry-After)."""
    project = request.match_info.get("project")
    if project is None:
        return await handler(request)
    token = request.headers.get("X-Auth-Token")
    if not token:
        raise Fault(401, "Authentication required: send a token in X-Auth-Token.")
    caller = await request.app["tokens"].identify(token)
    if caller is None:
        raise Fault(401, "The token is not valid.")
    request["identity"] = caller
    if caller.project != project:
        raise Fault(403, f"User with tenant id {caller.project} cannot access this resource.")
    request["project"], request["role"] = caller.project, caller.role
    policy.authorize(request, "api:read" if request.method in READS else "api:write")
    delay = request.app["rate_limiter"].check(project, request.method,
                                              request.path[len(f"/v1.0/{project}"):])
    if delay is not None:
        raise rate_limited(delay[0], delay[1].details)
    return await handler(request)


async def versions(request):
    return web.json_response({"versions": [{
        "id": "v1.0", "status": "CURRENT", "updated": "2012-08-01T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base_url(request)}/v1.0/"}]}]})


def route_groups(store: Store) -> list:
    """Every route group; the instance routes get the actions and update keys the
    others contribute."""
    groups = [Flavors(store), Datastores(store), Quotas(store), Subscriptions(store), Accounts(store),
              Configurations(store), Resize(store), Upgrade(store), Backups(store), BackupSchedules(store),
              BackupStrategies(store),
              Replication(store), Power(store), Schedules(store), GuestLogs(store),
              Ssl(store), Access(store), Clusters(), MgmtVersions(store),
              MgmtParameters(store), MgmtGuest(store)]
    actions, updates = {}, {}
    for group in groups:
        actions.update(getattr(group, "instance_actions", lambda: {})())
        updates.update(getattr(group, "instance_updates", lambda: {})())
    instances = Instances(store, actions, updates)
    return [instances, *groups, Mgmt(store, instances.actions)]


def build_app(store: Store, tracer, tokens: identity.TokenValidator | None = None,
              rate_limiter: ratelimit.RateLimiter | None = None) -> web.Application:
    """The application; token validation and rate limits as configured unless given."""
    app = web.Application(middlewares=[faults_middleware, auth_middleware], client_max_size=1024 ** 2)
    app["store"], app["tracer"] = store, tracer
    app["tokens"] = tokens or identity.validator(store)
    app["rate_limiter"] = rate_limiter or ratelimit.from_env()
    app["vault"] = Vault()
    policy.rules()  # a broken policy file stops the start, not a request

    async def tokens_lifecycle(app):
        await app["tokens"].start()
        yield
        await app["tokens"].close()
    app.cleanup_ctx.append(tokens_lifecycle)
    app["instance_views"] = InstanceViews(store)

    async def instance_views_lifecycle(app):
        kept = app["instance_views"]
        store.commit_listeners.append(kept.committed)  # read-your-writes: forgotten before the answer
        await kept.start()
        yield
        await kept.close()
        store.commit_listeners.remove(kept.committed)
    app.cleanup_ctx.append(instance_views_lifecycle)
    groups = route_groups(store)
    document = openapi.document(groups)

    async def serve_document(_request):
        return web.json_response(document)

    app.router.add_get("/", versions)
    app.router.add_get("/openapi.json", serve_document)
    for group in groups:
        group.routes(app, "/v1.0/{project}")
    return app
