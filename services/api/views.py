"""Trove's response shapes (reference §4)."""
from __future__ import annotations

import json
from datetime import datetime

from . import access


def ts(value: datetime | None) -> str | None:
    # Trove: ISO-8601, no microseconds, no zone
    return value.strftime("%Y-%m-%dT%H:%M:%S") if value else None


def links(base: str, project: str, collection: str, id_: str) -> list[dict]:
    host = base.split("://", 1)[-1]
    return [{"rel": "self", "href": f"https://{host}/v1.0/{project}/{collection}/{id_}"},
            {"rel": "bookmark", "href": f"https://{host}/{collection}/{id_}"}]


def flavor(row, base: str, project: str) -> dict:
    return {"id": int(row.id) if row.id.isdigit() else None, "str_id": row.id, "name": row.name,
            "ram": row.ram_mb, "vcpus": row.vcpus, "disk": row.disk_gb, "ephemeral": 0,
            "links": links(base, project, "flavors", row.id)}


def version(row, base: str, project: str, nested: bool = False) -> dict:
    doc = {"id": row.id, "name": row.name, "version": row.version,
           "links": links(base, project, "datastores/versions", row.id)}
    if not nested:
        doc["datastore"] = row.datastore_id
    return doc


def datastore(row, versions: list, base: str, project: str) -> dict:
    doc = {"id": row.id, "name": row.name, "links": links(base, project, "datastores", row.id),
           "versions": [version(v, base, project, nested=True) for v in versions]}
    if row.default_version_id in {v.id for v in versions}:  # not an inactive one hidden from the caller
        doc["default_version"] = row.default_version_id
    return doc


def volume(row) -> dict:
    """Trove's volume: its size, and (once the agent reported it) what is used, in GB."""
    shown = {"size": row.volume_gb}
    if row.volume_used_bytes is not None:
        shown["used"] = round(row.volume_used_bytes / 1024 ** 3, 3)
    return shown


def instance(row, base: str, project: str, detail: bool, group_names: dict[str, str] | None = None,
             replicas: dict[str, list[str]] | None = None) -> dict:
    """`group_names`: configuration group id -> name, for the detail view's `configuration`;
    `replicas`: primary id -> its replicas' ids."""
    doc = {
        "id": row.id, "name": row.name, "status": row.status,
        # Trove shows the guest's status only while no task runs (a stopped one's is SHUTDOWN)
        "operating_status": row.operating_status if row.status in ("ACTIVE", "RESTART_REQUIRED", "SHUTDOWN")
        else "",
        "links": links(base, project, "instances", row.id),
        "flavor": {"id": row.flavor_id, "links": links(base, project, "flavors", row.flavor_id)},
        "datastore": {"type": row.datastore, "version": row.datastore_version},
        "region": "RegionOne",
        "volume": volume(row),
    }
    doc["access"], public = access.shown(row)
    if row.address:
        doc["ip"] = [row.address]
        doc["addresses"] = [{"address": row.address, "type": "private"}, *public]
    if row.hostname:
        doc["hostname"] = row.hostname  # the replica set's endpoint: it reaches the current primary
        # Coffer's extension: the replica set's settings (PUT {"instance": {"replication": {...}}})
        doc["replication"] = {"failover_enabled": row.failover_enabled, "synchronous": row.synchronous}
    if row.replica_of_id:
        doc["replica_of"] = {"id": row.replica_of_id, "links": links(base, project, "instances", row.replica_of_id)}
    if (replicas or {}).get(row.id):
        doc["replicas"] = [{"id": r, "links": links(base, project, "instances", r)} for r in replicas[row.id]]
    if detail:
        doc["datastore"]["version_number"] = row.datastore_version_number
        doc["created"] = ts(row.created_at)
        doc["updated"] = ts(row.updated_at)
        if row.zone:
            doc["locality"] = row.zone
        if row.configuration_id:
            doc["configuration"] = {"id": row.configuration_id,
                                    "name": (group_names or {}).get(row.configuration_id, ""),
                                    "links": links(base, project, "configurations", row.configuration_id)}
        if row.fault_message:
            doc["fault"] = {"message": row.fault_message, "created": ts(row.fault_at),
                            "details": row.fault_details or ""}
    return doc


def mgmt_instance(row, base: str) -> dict:
    """Trove's mgmt view: the detail view and what an operator needs besides
    (the project, where it runs, the task)."""
    doc = instance(row, base, row.project_id, detail=True)
    addresses = doc.get("addresses", [])
    doc.update({
        "tenant_id": row.project_id, "server_id": row.id, "deleted": False, "deleted_at": None,
        "service_status": row.operating_status or "", "task_description": row.task or "No tasks for the instance.",
        "server": {"id": row.id, "name": row.name, "status": row.status, "tenant_id": row.project_id,
                   "host": row.host, "availability_zone": row.zone, "addresses": addresses},
        "guest_status": {"state_description": (row.operating_status or "").lower()},
    })
    return doc


def configuration(row, version, datastore_name: str, detail: bool = False, instance_count: int = 0) -> dict:
    doc = {"id": row.id, "name": row.name, "description": row.description, "created": ts(row.created_at),
           "updated": ts(row.updated_at), "datastore_version_id": version.id, "datastore_name": datastore_name,
           "datastore_version_name": version.name, "datastore_version_number": version.version}
    if detail:
        doc["values"] = json.loads(row.values)
        doc["instance_count"] = instance_count
    return doc
