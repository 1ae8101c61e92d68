"""Configuration groups as records: lookup, values and rules, and the checks for
attaching one to an instance, at create or later. Apart from the route module
(configurations.py) so that the instance routes can use it too."""
from __future__ import annotations

import json

from sqlalchemy import select

from . import datastores
from .faults import bad_request, not_found
from .tables import configurations


async def find(conn, project: str, group_id) -> object:
    """The project's group; 404 for any other (another project's looks the same)."""
    row = (await conn.execute(select(configurations).where(
        configurations.c.id == str(group_id), configurations.c.project_id == project))).first()
    if row is None:
        raise not_found(f"Configuration group {group_id} could not be found.")
    return row


def values_of(group) -> dict:
    return json.loads(group.values)


async def instance_version(conn, inst):
    ds = await datastores.find(conn, inst.datastore)
    return await datastores.find_version(conn, ds.id, inst.datastore_version)


async def attachable(conn, project: str, group_ref, version):
    """The group named by `group_ref` (an id or an href), if it may be attached to an
    instance of `version`: 404 unknown, 400 made for another datastore version."""
    group_id = str(group_ref).rstrip("/").rsplit("/", 1)[-1]
    group = await find(conn, project, group_id)
    if group.datastore_version_id != version.id:
        raise bad_request(f"Configuration group {group.id} is for another datastore version than the "
                          f"instance's ({version.name}).")
    return group


async def names(conn, ids) -> dict[str, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    rows = (await conn.execute(select(configurations.c.id, configurations.c.name).where(
        configurations.c.id.in_(ids)))).all()
    return {r.id: r.name for r in rows}
