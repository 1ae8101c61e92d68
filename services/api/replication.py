"""Replicas (reference §4.4–4.6): POST /instances with `replica_of` (and
`replica_count`) makes replicas of a primary, with its flavor, volume and
datastore; the primary's view lists `replicas`, each replica's `replica_of`, and
all of them the set's stable endpoint as `hostname`. Who is primary is the
provisioner's word (coffer.instance.replication_changed.v1), projected here."""
from __future__ import annotations

import uuid

from aiohttp import web
from sqlalchemy import select, update

from plumbing import topics as T
from plumbing.envelope import Event

from . import flavors, operations, policy, quotas, views
from .faults import Fault, bad_request
from .rest import base_url, now
from .tables import instances

SOURCE = "api"
REPLICATING_DATASTORES = {"postgresql", "mariadb", "mysql", "redis"}
CREATE_KEYS_FORBIDDEN = ("databases", "users", "restorePoint", "configuration")


def replica_count(spec: dict) -> int:
    count = spec.get("replica_count", 1)
    if isinstance(count, str) and count.isdigit():
        count = int(count)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 3:
        raise bad_request("Validation error: instance['replica_count'] must be an integer from 1 to 3.")
    return count


async def create_replicas(request, store, spec: dict, name: str) -> web.Response:
    """The replicas of spec['replica_of']; the answer shows the last one made."""
    count = replica_count(spec)
    primary_id = spec["replica_of"]
    if not isinstance(primary_id, str):
        raise bad_request("Validation error: instance['replica_of'] must be an instance id.")
    for key in CREATE_KEYS_FORBIDDEN:
        if spec.get(key):
            raise bad_request(f"Replicas cannot be created with '{key}': they copy their primary.")
    async with store.uow() as uow:
        primary = await policy.visible_row(uow.conn, request, instances, primary_id, "Instance")
        if primary.replica_of_id:
            raise Fault(401, f"Instance {primary_id} is a replica; replicas cannot be made of a replica.")
        if primary.datastore not in REPLICATING_DATASTORES:
            raise bad_request(f"Datastore {primary.datastore} has no replication.")
        if primary.status != "ACTIVE" or primary.task:
            raise Fault(422, f"Instance {primary_id} is not ACTIVE (status was {primary.status}).")
        flavor = await flavors.find(uow.conn, primary.flavor_id)
        await quotas.check(uow.conn, primary.project_id, {
            "instances": count, "volumes": primary.volume_gb * count, "ram": flavor.ram_mb * count})
        last = None
        for n in range(1, count + 1):
            replica_id, created = str(uuid.uuid4()), now()
            await uow.conn.execute(instances.insert().values(
                id=replica_id, project_id=primary.project_id, name=f"{name}-{n}" if count > 1 else name,
                status="BUILD", operating_status="", flavor_id=flavor.id, volume_gb=primary.volume_gb,
                datastore=primary.datastore, datastore_version=primary.datastore_version,
                datastore_version_number=primary.datastore_version_number, created_at=created,
                updated_at=created, replica_of_id=primary.id))
            await uow.emit(T.INSTANCE_REQUESTS, Event(
                "coffer.instance.create_requested.v1", replica_id, source=SOURCE, project=primary.project_id,
                data={"instance_id": replica_id, "project_id": primary.project_id, "name": name,
                      "flavor": {"id": flavor.id, "ram_mb": flavor.ram_mb, "vcpus": flavor.vcpus,
                                 "disk_gb": flavor.disk_gb},
                      "volume_gb": primary.volume_gb, "datastore": primary.datastore,
                      "datastore_version": primary.datastore_version,
                      "availability_zone": spec.get("availability_zone"), "databases": [], "users": [],
                      "replica_of": primary.id}))
            last = replica_id
        row = (await uow.conn.execute(select(instances).where(instances.c.id == last))).one()
        replicas = await replicas_of(uow.conn, [row.id])
    return web.json_response({"instance": views.instance(row, base_url(request), row.project_id, True,
                                                         replicas=replicas)})


async def refuse_deleting_a_primary(conn, row) -> None:
    """Trove's ReplicaSourceDeleteForbidden: detach or delete the replicas first (a
    replica being deleted counts as deleted)."""
    if (await conn.execute(select(instances.c.id).where(
            instances.c.replica_of_id == row.id, instances.c.task.is_distinct_from("delete")))).first():
        raise Fault(403, f"Instance {row.id} is the primary of replicas; detach or delete them first.")


async def replicas_of(conn, primary_ids: list[str]) -> dict[str, list[str]]:
    """primary id -> the ids of its replicas, for the views."""
    if not primary_ids:
        return {}
    rows = (await conn.execute(select(instances.c.id, instances.c.replica_of_id).where(
        instances.c.replica_of_id.in_(primary_ids)))).all()
    found: dict[str, list[str]] = {}
    for r in rows:
        found.setdefault(r.replica_of_id, []).append(r.id)
    return found


async def replication_changed(uow, event: Event) -> None:
    """The provisioner's word on an instance's place in its replica set."""
    d = event.data
    values = {"hostname": d["endpoint"] or None if d["role"] != "none" else None,
              "replica_of_id": d["primary_id"] if d["role"] == "replica" else None,
              "failover_enabled": d["failover_enabled"], "synchronous": d["synchronous"], "updated_at": now()}
    await uow.conn.execute(update(instances).where(instances.c.id == d["instance_id"]).values(**values))


class Replication:
    """The replica set's actions and update key, for the instance routes."""
    PATHS: dict = {}  # actions of POST /instances/{id}/action and a key of PUT /instances/{id}, described there

    def __init__(self, store):
        self.store = store

    def instance_actions(self) -> dict:
        return {"promote_to_replica_source": self.promote, "eject_replica_source": self.eject}

    def instance_updates(self) -> dict:
        return {"replica_of": self.detach, "replication": self.configure}

    async def configure(self, request, uow, inst, value) -> None:
        """Coffer's extension: {"failover_enabled": bool, "synchronous": bool} for the
        instance's replica set (given on any member)."""
        if not isinstance(value, dict) or not value or set(value) - {"failover_enabled", "synchronous"} or \
                not all(isinstance(v, bool) for v in value.values()):
            raise bad_request("Validation error: replication takes failover_enabled and/or synchronous, "
                              "each true or false.")
        if not inst.hostname:
            raise bad_request(f"Instance {inst.id} is in no replica set: make a replica of it first.")
        await operations.start(uow, inst, "set_replication", value, exclusive=False)

    async def promote(self, request, uow, inst, value) -> None:
        """A planned switchover: this replica becomes the primary, no write lost."""
        if not inst.replica_of_id:
            raise bad_request(f"Instance {inst.id} is not a replica.")
        await operations.start(uow, inst, "promote_to_replica_source", {}, busy_status="PROMOTE")

    async def eject(self, request, uow, inst, value) -> None:
        """The primary is lost: fence it and promote its most advanced replica."""
        if not (await replicas_of(uow.conn, [inst.id])).get(inst.id):
            raise bad_request(f"Instance {inst.id} is not the primary of replicas.")
        if inst.operating_status == "HEALTHY":
            raise bad_request(f"Instance {inst.id} is healthy (its heartbeat is current): promote a replica "
                              "instead.")
        await operations.start(uow, inst, "eject_replica_source", {}, busy_status="EJECT",
                               allowed=operations.RUNNING + ("ERROR",))

    async def detach(self, request, uow, inst, value) -> None:
        """Any value detaches (Trove): the replica becomes a standalone primary."""
        if not inst.replica_of_id:
            raise bad_request(f"Instance {inst.id} is not a replica.")
        await operations.start(uow, inst, "detach_replica", {}, busy_status="DETACH")

    def routes(self, app, prefix: str) -> None:
        """No routes of its own."""
