"""A datastore version's configuration parameter rules in force: the rules shipped in
parameters/ (parameter_rules.py) with an administrator's changes over them (the mgmt
parameter routes: a rule added, replaced or removed, kept in `parameter_changes`).
Configuration groups are checked against these, and the parameter routes show them."""
from __future__ import annotations

import json

from sqlalchemy import delete, select

from . import parameter_rules
from .tables import parameter_changes


async def rules_of(conn, version) -> dict[str, parameter_rules.Rule]:
    """The version's rules by lower-case name."""
    rules = dict(parameter_rules.rules_for(version.manager, version.name))
    changes = (await conn.execute(select(parameter_changes).where(
        parameter_changes.c.version_id == version.id))).all()
    for change in changes:
        if change.rule is None:
            rules.pop(change.name, None)
        else:
            rules[change.name] = parameter_rules.parse(json.loads(change.rule))
    return rules


async def put(conn, version_id: str, rule: parameter_rules.Rule) -> None:
    """Add or replace the rule of `rule.name`."""
    raw = {"name": rule.name, "type": rule.type, "restart_required": rule.restart_required,
           "min": rule.min, "max": rule.max}
    await _set(conn, version_id, rule.name.lower(), json.dumps(raw))


async def remove(conn, version_id: str, name: str) -> None:
    await _set(conn, version_id, name.lower(), None)


async def forget_version(conn, version_id: str) -> None:
    """A deleted version's changes go with it."""
    await conn.execute(delete(parameter_changes).where(parameter_changes.c.version_id == version_id))


async def _set(conn, version_id: str, name: str, rule: str | None) -> None:
    await conn.execute(delete(parameter_changes).where(
        parameter_changes.c.version_id == version_id, parameter_changes.c.name == name))
    await conn.execute(parameter_changes.insert().values(version_id=version_id, name=name, rule=rule))
