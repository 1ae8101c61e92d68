"""Who may do what: rules as data, after Trove's default policy (reference §1
"Admin"): readers read, members manage their project's resources, admins also
reach the admin-only routes and other projects' resources by id.

`RULES` is the single source of the defaults (rule -> roles allowed). An operator
overrides any of them with a JSON file named by COFFER_POLICY_FILE, e.g.
{"instance:delete": ["admin"], "instance:create": ["admin", "member"]};
`coffer policy defaults` prints the defaults in that format. A rule not listed is
allowed to writers only."""
from __future__ import annotations

import functools
import json
import os

from aiohttp import web
from sqlalchemy import Table, select

from .faults import Fault, not_found

READ = frozenset({"admin", "member", "reader"})
WRITE = frozenset({"admin", "member"})
ADMIN = frozenset({"admin"})

RULES: dict[str, frozenset[str]] = {
    # every request passes one of these first: a reader is read-only everywhere
    "api:read": READ, "api:write": WRITE,
    # Trove's context_is_admin: reaches any project's resources by id, and the mgmt routes
    "context_is_admin": ADMIN,
    "instance:index": READ, "instance:show": READ, "instance:create": WRITE, "instance:delete": WRITE,
    "instance:update": WRITE, "instance:action": WRITE, "instance:reset_status": ADMIN,
    "instance:extension:database:index": READ, "instance:extension:database:create": WRITE,
    "instance:extension:database:delete": WRITE,
    "instance:extension:user:index": READ, "instance:extension:user:show": READ,
    "instance:extension:user:create": WRITE, "instance:extension:user:update": WRITE,
    "instance:extension:user:delete": WRITE,
    "instance:extension:user_access:index": READ, "instance:extension:user_access:update": WRITE,
    "instance:extension:user_access:delete": WRITE,
    "instance:extension:root:index": READ, "instance:extension:root:create": WRITE,
    "instance:extension:root:delete": WRITE,
    "configuration:index": READ, "configuration:show": READ, "configuration:instances": READ,
    "configuration:create": WRITE, "configuration:update": WRITE, "configuration:delete": WRITE,
    "instance:extension:schedule:index": READ, "instance:extension:schedule:create": WRITE,
    "instance:extension:schedule:delete": WRITE,
    "instance:guest_log_list": READ, "instance:guest_log_action": WRITE,
    "subscription:index": READ, "subscription:show": READ, "subscription:create": WRITE,
    "subscription:update": WRITE, "subscription:delete": WRITE,
    "limits:index": READ, "quota:show": READ,
    "backup:index": READ, "backup:show": READ, "backup:create": WRITE, "backup:delete": WRITE,
    "backup:index:all_projects": ADMIN,
    "instance:ssl:show": READ, "instance:ssl:update": WRITE,
    "cluster:index": READ, "cluster:show": READ, "cluster:create": WRITE, "cluster:action": WRITE,
    "cluster:delete": WRITE,
    # the mgmt extension (Trove answers 401 to a non-admin there)
    "mgmt:instance:index": ADMIN, "mgmt:instance:show": ADMIN, "mgmt:instance:action": ADMIN,
    "mgmt:instance:root": ADMIN, "mgmt:instance:hwinfo": ADMIN, "mgmt:instance:diagnostics": ADMIN,
    "mgmt:instance:rpc_ping": ADMIN, "mgmt:instance:upgrade": ADMIN,
    "mgmt:quota:update": ADMIN, "mgmt:datastore_version:index": ADMIN, "mgmt:datastore_version:show": ADMIN,
    "mgmt:datastore_version:create": ADMIN, "mgmt:datastore_version:edit": ADMIN,
    "mgmt:datastore_version:delete": ADMIN,
    "mgmt:parameter:index": ADMIN, "mgmt:parameter:show": ADMIN, "mgmt:parameter:create": ADMIN,
    "mgmt:parameter:update": ADMIN, "mgmt:parameter:delete": ADMIN,
    "mgmt:cluster:index": ADMIN, "mgmt:cluster:show": ADMIN, "mgmt:cluster:action": ADMIN,
}


def load_overrides(path: str) -> dict[str, frozenset[str]]:
    """The operator's policy file: {rule: [role, ...]}; an unknown rule is refused
    so that a typo does not silently leave a default in force."""
    with open(path) as f:
        doc = json.load(f)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: the policy file must be a JSON object of rule -> list of roles")
    out = {}
    for rule, roles in doc.items():
        if rule not in RULES:
            raise ValueError(f"{path}: unknown policy rule {rule!r}")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ValueError(f"{path}: rule {rule!r} must name a list of roles")
        out[rule] = frozenset(roles)
    return out


@functools.cache
def rules() -> dict[str, frozenset[str]]:
    """The rules in force: the defaults and the operator's file over them."""
    path = os.environ.get("COFFER_POLICY_FILE")
    return {**RULES, **(load_overrides(path) if path else {})}


def allowed(roles, rule: str) -> bool:
    """Whether any of `roles` (a role name or a set of them) may do `rule`."""
    granted = rules().get(rule, WRITE)
    return (roles in granted) if isinstance(roles, str) else not granted.isdisjoint(roles)


def is_admin(request: web.Request) -> bool:
    return allowed(request["identity"].roles, "context_is_admin")


async def visible_row(conn, request: web.Request, table: Table, row_id: str, noun: str):
    """The row `row_id` of `table` if the caller may see it: its own project's, or any
    project's to an admin, who reaches resources by id (as in Trove); 404 otherwise."""
    query = select(table).where(table.c.id == row_id)
    if not is_admin(request):
        query = query.where(table.c.project_id == request["project"])
    row = (await conn.execute(query)).first()
    if row is None:
        raise not_found(f"{noun} {row_id} could not be found.")
    return row


def authorize(request: web.Request, rule: str) -> None:
    """403 as Trove words it when the caller may not do `rule` (401 on the mgmt
    routes, as Trove answers there)."""
    if not allowed(request["identity"].roles, rule):
        if rule.startswith("mgmt:"):
            raise Fault(401, "User does not have admin privileges.")
        raise Fault(403, f"Policy doesn't allow {rule} to be performed.")


def defaults_document() -> dict[str, list[str]]:
    return {rule: sorted(roles) for rule, roles in sorted(RULES.items())}
