"""An audit event for every mutating request (POST, PUT, PATCH, DELETE): who
(project, user, roles, address), what (method, route, the resource ids in the
path, the action of an action request), when, and the outcome (status code).
Never a body, a query string or a header: nothing secret travels."""
from __future__ import annotations

import json
import logging

from aiohttp import web

from plumbing import topics as T
from plumbing.envelope import Event
from plumbing.logs import log

SOURCE = "api"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
logger = logging.getLogger("api")


async def action_of(request: web.Request) -> str | None:
    """The action named by an action request's body ({"restart": {}} -> restart);
    the body was read by the handler already, so this reads no more."""
    if not request.path.rstrip("/").endswith("/action") or not request.body_exists:
        return None
    try:
        body = json.loads(await request.read())
    except (ValueError, web.HTTPException):  # not JSON; too large to have been read
        return None
    return next(iter(body), None) if isinstance(body, dict) and body else None


async def record(request: web.Request, status: int, request_id: str, route: str) -> None:
    try:
        await _record(request, status, request_id, route)
    except Exception:  # the answer stands; the operator learns the audit record is missing
        log(logger, logging.ERROR, "audit event not recorded", request_id=request_id, exc_info=True)


async def _record(request: web.Request, status: int, request_id: str, route: str) -> None:
    identity = request.get("identity")
    resource_ids = {k: v for k, v in request.match_info.items() if k != "project"}
    data = {
        "request_id": request_id, "project_id": identity.project if identity else "",
        "user_id": identity.user if identity else "", "roles": sorted(identity.roles) if identity else [],
        "remote_address": request.remote or "", "method": request.method, "route": route,
        "path": request.path, "resource_ids": resource_ids, "action": await action_of(request),
        "status": status, "outcome": "success" if status < 400 else "failure",
        "requested_at": request["received_at"].isoformat(),
    }
    async with request.app["store"].uow() as uow:
        await uow.emit(T.AUDIT_EVENTS, Event("coffer.audit.request.v1", data["project_id"] or "anonymous", data,
                                             source=SOURCE, project=data["project_id"]))
