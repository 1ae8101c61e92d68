"""Replica sets, the provisioner's side: a replica's create (its primary serves it,
then it copies the primary and follows it), the set's stable endpoint, and the
topology event that tells the API and the monitor who is primary."""
from __future__ import annotations

import json
import secrets

from sqlalchemy import select

from plumbing import sealing
from plumbing import topics as T
from plumbing.envelope import Event
from plumbing.outbox import UnitOfWork

from .drivers import ComputeDriver
from .tables import instances, replica_sets

SOURCE = "provisioner"


def account_for(replica_id: str) -> str:
    """The source's replication account (and slot) for one replica: one each, so a
    new replica never changes the password another one streams with."""
    return "coffer_repl_" + replica_id.replace("-", "")[:20]


async def row(uow: UnitOfWork, instance_id: str):
    return (await uow.conn.execute(select(instances).where(instances.c.instance_id == instance_id))).first()


async def send(uow: UnitOfWork, event: Event, target, command: str, arguments: dict, command_id: str,
               sealed: str | None = None, epoch: int | None = None) -> None:
    """A verb for `target`'s agent, carrying the replica set's epoch."""
    await uow.emit(T.AGENT_COMMANDS, event.caused("coffer.agent.command.v1", {
        "instance_id": target.instance_id, "command_id": command_id,
        "epoch": target.epoch if epoch is None else epoch, "command": command,
        "arguments": json.dumps(arguments), "sealed": sealed}, subject=target.instance_id, source=SOURCE))


async def serve(uow: UnitOfWork, event: Event, source, replica_id: str, replica_key: str, command_id: str) -> str:
    """Ask `source` to serve `replica_id` with a new password; the password sealed
    for the replica's agent (the provisioner never keeps it in clear)."""
    password = secrets.token_urlsafe(24)
    await send(uow, event, source, "serve_replica", {"account": account_for(replica_id)}, command_id,
               sealing.seal(source.agent_public_key, {"password": password}))
    return sealing.seal(replica_key, {"password": password})


def follow_arguments(source, replica_id: str, copy_data: bool) -> dict:
    return {"address": source.address, "port": source.port, "account": account_for(replica_id),
            "copy_data": copy_data}


async def start_sourcing(uow: UnitOfWork, event: Event, replica, saga) -> None:
    """The create saga's "source" effect."""
    primary = await row(uow, replica.replica_of)
    saga.source_command_id = f"create:{replica.instance_id}:source"
    saga.sealed_credentials = await serve(uow, event, primary, replica.instance_id, saga.agent_public_key,
                                          saga.source_command_id)


async def start_following(uow: UnitOfWork, event: Event, replica, saga) -> None:
    """The create saga's "prepare" effect for a replica: copy the primary, follow it."""
    primary = await row(uow, replica.replica_of)
    saga.prepare_command_id = f"create:{replica.instance_id}:follow"
    # the copy holds the primary's accounts: the agent names them for the API's view
    await send(uow, event, replica, "follow", {**follow_arguments(primary, replica.instance_id, True),
                                               "inventory": True},
               saga.prepare_command_id, saga.sealed_credentials)


async def set_of(uow: UnitOfWork, primary_id: str):
    return (await uow.conn.execute(select(replica_sets).where(replica_sets.c.primary_id == primary_id))).first()


async def members(uow: UnitOfWork, primary_id: str) -> list:
    """The replicas following `primary_id`."""
    return (await uow.conn.execute(select(instances).where(
        instances.c.replica_of == primary_id, instances.c.status == "ACTIVE"))).all()


async def replica_active(uow: UnitOfWork, event: Event, driver: ComputeDriver, replica) -> None:
    """A replica is made: its primary's set gets an endpoint if it had none, and
    every member hears the topology."""
    primary = await row(uow, replica.replica_of)
    rs = await set_of(uow, primary.instance_id)
    if rs is None:
        taken = {r.address for r in (await uow.conn.execute(
            select(instances.c.address).where(instances.c.address.is_not(None)))).all()}
        taken |= {r.endpoint_address for r in (await uow.conn.execute(select(replica_sets.c.endpoint_address))).all()}
        address = driver.allocate_address(taken)
        await uow.conn.execute(replica_sets.insert().values(
            id=primary.instance_id, primary_id=primary.instance_id, epoch=primary.epoch, endpoint_address=address,
            port=primary.port, failover_enabled=True, synchronous=False))
        rs = await set_of(uow, primary.instance_id)
    driver.open_endpoint(rs.id, rs.endpoint_address, rs.port, (primary.address, primary.port))
    await announce(uow, event, rs)


async def member_deleted(uow: UnitOfWork, event: Event, driver: ComputeDriver, gone) -> None:
    """After `gone` (its row, read before) was deleted: its primary forgets it, its
    set hears the new topology; a deleted primary's set (the API refuses while it
    has replicas) closes its endpoint."""
    if gone.replica_of:
        primary = await row(uow, gone.replica_of)
        rs = await set_of(uow, gone.replica_of)
        if primary is not None and primary.status == "ACTIVE":
            await send(uow, event, primary, "forget_replica", {"account": account_for(gone.instance_id)},
                       f"forget:{gone.instance_id}")
        if rs is not None:
            await announce(uow, event, rs)
    rs = await set_of(uow, gone.instance_id)
    if rs is not None:
        driver.close_endpoint(rs.id)
        await uow.conn.execute(replica_sets.delete().where(replica_sets.c.id == rs.id))


async def reopen_endpoints(store, driver: ComputeDriver) -> int:
    """After a restart of the whole stack: every replica set's endpoint listens again,
    reaching its primary."""
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(replica_sets, instances.c.address).join(
            instances, instances.c.instance_id == replica_sets.c.primary_id))).all()
    for rs in rows:
        if rs.endpoint_address and rs.address:
            driver.open_endpoint(rs.id, rs.endpoint_address, rs.port, (rs.address, rs.port))
    return len(rows)


async def announce(uow: UnitOfWork, event: Event, rs, left: tuple[str, ...] = ()) -> None:
    """coffer.instance.replication_changed.v1 for every member of the set (and for
    instances that `left` it), each keyed by its own id."""
    replicas = [r.instance_id for r in await members(uow, rs.primary_id)]
    common = {"replica_set_id": rs.id, "primary_id": rs.primary_id, "replicas": replicas,
              "endpoint": rs.endpoint_address or "", "failover_enabled": rs.failover_enabled,
              "synchronous": rs.synchronous, "epoch": rs.epoch}
    for member, role in [(rs.primary_id, "primary"), *[(r, "replica") for r in replicas]]:
        await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.replication_changed.v1", {
            "instance_id": member, "role": role, **common}, subject=member, source=SOURCE))
    for gone in left:
        await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.replication_changed.v1", {
            "instance_id": gone, "role": "none", **common}, subject=gone, source=SOURCE))
