"""Who may do what: rules as data, after Trove's default policy (reference §1
"Admin"): readers read, members manage their project's resources, admins also
reach the admin-only routes."""
from __future__ import annotations

from aiohttp import web

from .faults import Fault

READ = frozenset({"admin", "member", "reader"})
WRITE = frozenset({"admin", "member"})
ADMIN = frozenset({"admin"})

# rule -> roles allowed. A rule not listed is allowed to writers only.
RULES: dict[str, frozenset[str]] = {
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
    "instance:guest_log_list": READ, "instance:guest_log_action": WRITE,
    "subscription:index": READ, "subscription:show": READ, "subscription:create": WRITE,
    "subscription:update": WRITE, "subscription:delete": WRITE,
}


def allowed(role: str, rule: str) -> bool:
    return role in RULES.get(rule, WRITE)


def authorize(request: web.Request, rule: str) -> None:
    """403 as Trove words it when the caller's role may not do `rule`."""
    if not allowed(request["role"], rule):
        raise Fault(403, f"Policy doesn't allow {rule} to be performed.")
