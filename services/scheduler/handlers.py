"""Placement requests in, placed / failed out; claims resized (a flavor resize) and
released when an instance ends."""
from __future__ import annotations

from dataclasses import replace

from sqlalchemy import delete, select, update

from plumbing import topics as T
from plumbing.envelope import Event
from plumbing.outbox import Store, UnitOfWork

from . import placement
from .tables import claims, hosts

SOURCE = "scheduler"
MAX_CLAIM_RACES = 10


class ClaimRace(Exception):
    """Another scheduler changed the host between read and claim."""


def _host(row) -> placement.Host:
    return placement.Host(row.name, row.zone, row.vcpus, row.ram_mb, row.disk_gb, row.used_vcpus,
                          row.used_ram_mb, row.used_disk_gb,
                          frozenset(filter(None, row.datastores.split("+"))), row.generation)


async def declare_inventory(store: Store, declared: list[placement.Host]) -> None:
    """Upsert declared hosts, keeping their usage."""
    async with store.uow() as uow:
        known = {r.name for r in (await uow.conn.execute(select(hosts.c.name))).all()}
        for h in declared:
            values = dict(zone=h.zone, vcpus=h.vcpus, ram_mb=h.ram_mb, disk_gb=h.disk_gb,
                          datastores="+".join(sorted(h.datastores)))
            if h.name in known:
                await uow.conn.execute(update(hosts).where(hosts.c.name == h.name).values(**values))
            else:
                await uow.conn.execute(hosts.insert().values(name=h.name, used_vcpus=0, used_ram_mb=0,
                                                             used_disk_gb=0, generation=0, **values))


async def _try_claim(uow: UnitOfWork, req: placement.Request, replica_of: str | None = None) -> placement.Host:
    rows = (await uow.conn.execute(select(hosts))).all()
    for host in placement.rank([_host(r) for r in rows], req):
        result = await uow.conn.execute(
            update(hosts).where(hosts.c.name == host.name, hosts.c.generation == host.generation)
            .values(used_vcpus=hosts.c.used_vcpus + req.vcpus, used_ram_mb=hosts.c.used_ram_mb + req.ram_mb,
                    used_disk_gb=hosts.c.used_disk_gb + req.disk_gb, generation=hosts.c.generation + 1))
        if result.rowcount == 1:
            await uow.conn.execute(claims.insert().values(instance_id=req.instance_id, host=host.name,
                                                          vcpus=req.vcpus, ram_mb=req.ram_mb, disk_gb=req.disk_gb,
                                                          replica_of=replica_of))
            return host
        raise ClaimRace(host.name)
    raise AssertionError("rank returns at least one host or raises")


async def replica_set_hosts(uow: UnitOfWork, primary_id: str) -> frozenset[str]:
    """The hosts of a primary and of its replicas: a new replica avoids them all."""
    rows = (await uow.conn.execute(select(claims.c.host).where(
        (claims.c.instance_id == primary_id) | (claims.c.replica_of == primary_id)))).all()
    return frozenset(r.host for r in rows)


async def place(store: Store, event: Event) -> None:
    d = event.data
    base = placement.Request(d["instance_id"], d["flavor"]["vcpus"], d["flavor"]["ram_mb"], d["volume_gb"],
                             d["datastore"], d.get("availability_zone"))
    for _ in range(MAX_CLAIM_RACES):
        try:
            async def apply(uow: UnitOfWork):
                req = base
                if d.get("replica_of"):
                    req = replace(base, avoid_hosts=await replica_set_hosts(uow, d["replica_of"]))
                existing = (await uow.conn.execute(select(claims).where(
                    claims.c.instance_id == req.instance_id))).first()
                if existing:  # already placed (a redelivered request under a new id)
                    return
                try:
                    host = await _try_claim(uow, req, d.get("replica_of"))
                except placement.NoValidHost as exc:
                    await uow.emit(T.PLACEMENT_EVENTS, event.caused(
                        "coffer.placement.failed.v1", {"instance_id": req.instance_id, "reason": str(exc)},
                        source=SOURCE))
                    return
                await uow.emit(T.PLACEMENT_EVENTS, event.caused(
                    "coffer.placement.placed.v1",
                    {"instance_id": req.instance_id, "host": host.name, "zone": host.zone}, source=SOURCE))
            await store.handled_once(event, apply)
            return
        except ClaimRace:
            continue
    raise RuntimeError(f"could not claim capacity for {base.instance_id}: too many concurrent claims")


async def resize_claim(store: Store, event: Event) -> None:
    """Change an instance's claim on its host to a new flavor, if the host has room
    for the difference (an instance stays on its host: its data lives there)."""
    d = event.data
    answer = {"instance_id": d["instance_id"], "request_id": d["request_id"]}

    async def apply(uow: UnitOfWork):
        claim = (await uow.conn.execute(select(claims).where(claims.c.instance_id == d["instance_id"]))).first()
        if claim is None:
            await uow.emit(T.PLACEMENT_EVENTS, event.caused("coffer.placement.resize_failed.v1", {
                **answer, "reason": "The instance holds no capacity on any host."}, source=SOURCE))
            return
        host = _host((await uow.conn.execute(select(hosts).where(hosts.c.name == claim.host))).one())
        more_vcpus, more_ram = d["vcpus"] - claim.vcpus, d["ram_mb"] - claim.ram_mb
        disk_gb = claim.disk_gb if d.get("disk_gb") is None else d["disk_gb"]  # none: the volume stays
        more_disk = disk_gb - claim.disk_gb
        reason = None if d["force"] else placement.fits_more(host, more_vcpus, more_ram, more_disk)
        if reason:
            await uow.emit(T.PLACEMENT_EVENTS, event.caused("coffer.placement.resize_failed.v1", {
                **answer, "reason": f"No valid host was found. {host.name}: {reason}"}, source=SOURCE))
            return
        result = await uow.conn.execute(
            update(hosts).where(hosts.c.name == host.name, hosts.c.generation == host.generation)
            .values(used_vcpus=hosts.c.used_vcpus + more_vcpus, used_ram_mb=hosts.c.used_ram_mb + more_ram,
                    used_disk_gb=hosts.c.used_disk_gb + more_disk, generation=hosts.c.generation + 1))
        if result.rowcount != 1:
            raise ClaimRace(host.name)
        await uow.conn.execute(update(claims).where(claims.c.instance_id == d["instance_id"]).values(
            vcpus=d["vcpus"], ram_mb=d["ram_mb"], disk_gb=disk_gb))
        await uow.emit(T.PLACEMENT_EVENTS, event.caused("coffer.placement.resized.v1", {
            **answer, "host": host.name}, source=SOURCE))

    for _ in range(MAX_CLAIM_RACES):
        try:
            await store.handled_once(event, apply)
            return
        except ClaimRace:
            continue
    raise RuntimeError(f"could not resize the claim of {d['instance_id']}: too many concurrent claims")


async def release(store: Store, event: Event) -> None:
    instance_id = event.data["instance_id"]
    if event.type == "coffer.instance.failed.v1" and event.data["operation"] != "create":
        return  # a failed day-2 operation leaves the instance where it is

    async def apply(uow: UnitOfWork):
        claim = (await uow.conn.execute(select(claims).where(claims.c.instance_id == instance_id))).first()
        if claim is None:
            return
        await uow.conn.execute(update(hosts).where(hosts.c.name == claim.host).values(
            used_vcpus=hosts.c.used_vcpus - claim.vcpus, used_ram_mb=hosts.c.used_ram_mb - claim.ram_mb,
            used_disk_gb=hosts.c.used_disk_gb - claim.disk_gb, generation=hosts.c.generation + 1))
        await uow.conn.execute(delete(claims).where(claims.c.instance_id == instance_id))

    await store.handled_once(event, apply)
