"""Switchovers, the provisioner's side: start one (a promote or eject action, or
the monitor's failover request), persist it in the operations table (kind
"switchover", one running per replica set), and perform its effects."""
from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from datetime import datetime, timezone

from sqlalchemy import select, update

from plumbing import sealing
from plumbing import topics as T
from plumbing.envelope import Event
from plumbing.logs import log
from plumbing.outbox import Store, UnitOfWork

from . import replica_sets
from .drivers import ComputeDriver
from .switchover import Switchover
from .tables import instances, operations, replica_sets as sets_table

SOURCE = "provisioner"
logger = logging.getLogger("provisioner")
ACTIONS = {"promote_to_replica_source": "promote", "eject_replica_source": "failover"}


def now() -> datetime:
    return datetime.now(timezone.utc)


class Stale(Exception):
    """The switchover row changed under us; the event is retried."""


class Switchovers:
    def __init__(self, store: Store, driver: ComputeDriver):
        self.store, self.driver = store, driver

    # -- starting --------------------------------------------------------------------
    async def action_requested(self, event: Event) -> None:
        """promote_to_replica_source (on a replica) or eject_replica_source (on a primary)."""
        d = event.data

        async def apply(uow: UnitOfWork):
            refusal = await self._start(uow, event, ACTIONS[d["action"]], d["instance_id"], d["operation_id"],
                                        f"{d['action']} requested")
            if refusal:
                await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.action_failed.v1", {
                    "instance_id": d["instance_id"], "operation_id": d["operation_id"], "action": d["action"],
                    "status": "", "message": refusal, "details": ""}, subject=d["instance_id"], source=SOURCE))
        await self.store.handled_once(event, apply)

    async def failover_requested(self, event: Event) -> None:
        """The monitor's decision; a request for a primary that is no longer one, or
        whose set is already switching, changes nothing (two workers may both ask)."""
        d = event.data

        async def apply(uow: UnitOfWork):
            refusal = await self._start(uow, event, "failover", d["instance_id"], None, d["reason"],
                                        expected_epoch=d["epoch"])
            if refusal:
                log(logger, logging.INFO, "failover request ignored", instance_id=d["instance_id"], why=refusal)
        await self.store.handled_once(event, apply)

    async def _start(self, uow: UnitOfWork, event: Event, kind: str, instance_id: str, operation_id: str | None,
                     reason: str, expected_epoch: int | None = None) -> str | None:
        """None once started, else why not."""
        inst = await replica_sets.row(uow, instance_id)
        if inst is None:
            return "The instance is gone."
        primary_id = inst.replica_of if kind == "promote" else inst.instance_id
        if primary_id is None:
            return "The instance is not a replica." if kind == "promote" else "The instance is not a primary."
        rs = await replica_sets.set_of(uow, primary_id)
        if rs is None:
            return "The instance is not the primary of a replica set."
        if expected_epoch is not None and (rs.epoch != expected_epoch or not rs.failover_enabled):
            return "The replica set moved on, or its automatic failover is off."
        running = (await uow.conn.execute(select(operations.c.op_id).where(
            operations.c.instance_id == rs.id, operations.c.kind == "switchover",
            operations.c.finished.is_(False)))).first()
        if running:
            return "The replica set is already switching its primary."
        replicas = [r.instance_id for r in await replica_sets.members(uow, primary_id)]
        if kind == "promote" and instance_id not in replicas:
            return "The replica is not ready."
        await uow.conn.execute(update(sets_table).where(sets_table.c.id == rs.id).values(epoch=rs.epoch + 1))
        saga = Switchover(str(uuid.uuid4()), kind, rs.id, primary_id, replicas, rs.epoch + 1,
                          target=instance_id if kind == "promote" else None, operation_id=operation_id,
                          operation_instance=instance_id if operation_id else None, reason=reason,
                          started_at=time.time())
        saga.begin()
        await uow.conn.execute(operations.insert().values(
            op_id=saga.op_id, instance_id=rs.id, kind="switchover", step=saga.step, deadline=saga.deadline(now()),
            data=json.dumps(saga.to_dict()), finished=False, version=0))
        await self._perform(uow, event, saga)
        await uow.conn.execute(update(operations).where(operations.c.op_id == saga.op_id).values(
            data=json.dumps(saga.to_dict()), step=saga.step, finished=saga.step in ("done", "failed")))
        return None

    # -- detaching a replica (PUT replica_of null): it is promoted on its own ------------
    async def detach_requested(self, event: Event) -> None:
        d = event.data

        async def apply(uow: UnitOfWork):
            replica = await replica_sets.row(uow, d["instance_id"])
            # the replica's accounts are its primary's, as they are now: the API's view of it is told
            await replica_sets.send(uow, event, replica, "promote", {"inventory": True},
                                    f"dt:{d['operation_id']}:{d['instance_id']}")
        await self.store.handled_once(event, apply)

    async def detach_result(self, event: Event) -> None:
        d = event.data
        _, operation_id, replica_id = d["command_id"].split(":")

        async def apply(uow: UnitOfWork):
            replica = await replica_sets.row(uow, replica_id)
            outcome = {"instance_id": replica_id, "operation_id": operation_id, "action": "detach_replica",
                       "status": ""}
            if not d["success"]:
                await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.action_failed.v1", {
                    **outcome, "message": f"The replica could not be detached: {d['error']}", "details": ""},
                    subject=replica_id, source=SOURCE))
                return
            primary_id = replica.replica_of
            await uow.conn.execute(update(instances).where(instances.c.instance_id == replica_id).values(
                replica_of=None))
            primary = await replica_sets.row(uow, primary_id) if primary_id else None
            if primary is not None:
                await replica_sets.send(uow, event, primary, "forget_replica",
                                        {"account": replica_sets.account_for(replica_id)}, f"forget:{replica_id}")
            rs = await replica_sets.set_of(uow, primary_id) if primary_id else None
            accounts = json.loads(d.get("output") or "{}").get("accounts")
            await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.action_completed.v1", {
                **outcome, "output": json.dumps({"accounts": accounts} if accounts else {})},
                subject=replica_id, source=SOURCE))
            if rs is not None:
                await replica_sets.announce(uow, event, rs, left=(replica_id,))
        await self.store.handled_once(event, apply)

    # -- a set's settings (PUT replication): automatic failover on/off, synchronous ------
    async def configure_requested(self, event: Event) -> None:
        d = event.data
        wanted = json.loads(d["arguments"])

        async def apply(uow: UnitOfWork):
            inst = await replica_sets.row(uow, d["instance_id"])
            rs = await replica_sets.set_of(uow, inst.replica_of or inst.instance_id)
            outcome = {"instance_id": inst.instance_id, "operation_id": d["operation_id"],
                       "action": "set_replication", "status": ""}
            if rs is None:
                await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.action_failed.v1", {
                    **outcome, "message": "The instance is in no replica set.", "details": ""},
                    subject=inst.instance_id, source=SOURCE))
                return
            if "failover_enabled" in wanted:
                await uow.conn.execute(update(sets_table).where(sets_table.c.id == rs.id).values(
                    failover_enabled=bool(wanted["failover_enabled"])))
                rs = await replica_sets.set_of(uow, rs.primary_id)
                await replica_sets.announce(uow, event, rs)
            if "synchronous" in wanted:  # shown once the primary's engine has it
                primary = await replica_sets.row(uow, rs.primary_id)
                enabled = bool(wanted["synchronous"])
                await replica_sets.send(uow, event, primary, "set_synchronous", {"enabled": enabled},
                                        f"cf:{d['operation_id']}:{inst.instance_id}:{int(enabled)}")
                return
            await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.action_completed.v1", {
                **outcome, "output": "{}"}, subject=inst.instance_id, source=SOURCE))
        await self.store.handled_once(event, apply)

    async def configure_result(self, event: Event) -> None:
        d = event.data
        _, operation_id, instance_id, enabled = d["command_id"].split(":")
        if operation_id == "-":
            return  # after a switchover: the switchover's own events said what matters

        async def apply(uow: UnitOfWork):
            outcome = {"instance_id": instance_id, "operation_id": operation_id, "action": "set_replication",
                       "status": ""}
            inst = await replica_sets.row(uow, instance_id)
            rs = await replica_sets.set_of(uow, inst.replica_of or inst.instance_id) if inst else None
            if d["success"] and rs is not None:
                await uow.conn.execute(update(sets_table).where(sets_table.c.id == rs.id).values(
                    synchronous=enabled == "1"))
                await replica_sets.announce(uow, event, await replica_sets.set_of(uow, rs.primary_id))
            if d["success"]:
                await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.action_completed.v1", {
                    **outcome, "output": "{}"}, subject=instance_id, source=SOURCE))
            else:
                await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.action_failed.v1", {
                    **outcome, "message": f"The primary could not change its replication mode: {d['error']}",
                    "details": ""}, subject=instance_id, source=SOURCE))
        await self.store.handled_once(event, apply)

    # -- advancing -------------------------------------------------------------------
    async def command_result(self, event: Event) -> None:
        d = event.data
        op_id = d["command_id"].split(":")[1]
        await self._advance(event, op_id, lambda saga: saga.reported(
            d["command_id"], d["success"], d["error"], json.loads(d.get("output") or "{}")))

    async def expired(self, op_id: str) -> None:
        await self._advance(Event("coffer.internal.deadline", op_id, {}, source=SOURCE), op_id,
                            lambda saga: saga.expired(), once=False)

    async def _advance(self, event: Event, op_id: str, change, once: bool = True) -> None:
        async def apply(uow: UnitOfWork):
            row = (await uow.conn.execute(select(operations).where(
                operations.c.op_id == op_id, operations.c.finished.is_(False)))).first()
            if row is None:
                return
            saga = Switchover.from_dict(json.loads(row.data))
            step = saga.step
            change(saga)
            await self._perform(uow, event, saga)
            values = dict(step=saga.step, data=json.dumps(saga.to_dict()), version=row.version + 1,
                          finished=saga.step in ("done", "failed"))
            if saga.step != step:
                values["deadline"] = saga.deadline(now())
            result = await uow.conn.execute(update(operations).where(
                operations.c.op_id == op_id, operations.c.version == row.version).values(**values))
            if result.rowcount != 1:
                raise Stale(op_id)
        if once:
            await self.store.handled_once(event, apply)
        else:
            async with self.store.uow() as uow:
                await apply(uow)

    # -- effects -----------------------------------------------------------------------
    async def _perform(self, uow: UnitOfWork, event: Event, saga: Switchover) -> None:
        for effect in saga.effects:
            name, args = effect[0], effect[1:]
            if name == "send":
                who, verb, arguments, cid = args
                await replica_sets.send(uow, event, await replica_sets.row(uow, who), verb, arguments, cid,
                                        epoch=saga.epoch)
            elif name == "fence":
                self.driver.power_off(args[0])
                await uow.conn.execute(update(instances).where(instances.c.instance_id == args[0]).values(
                    status="FENCED"))
            elif name == "serve":
                follower, cid = args
                target = await replica_sets.row(uow, saga.target)
                follower_row = await replica_sets.row(uow, follower)
                password = secrets.token_urlsafe(24)
                await replica_sets.send(uow, event, target, "serve_replica",
                                        {"account": replica_sets.account_for(follower)}, cid,
                                        sealing.seal(target.agent_public_key, {"password": password}), saga.epoch)
                saga.sealed[follower] = sealing.seal(follower_row.agent_public_key, {"password": password})
            elif name == "follow":
                follower, cid = args
                target = await replica_sets.row(uow, saga.target)
                await replica_sets.send(uow, event, await replica_sets.row(uow, follower), "follow",
                                        replica_sets.follow_arguments(target, follower, False), cid,
                                        saga.sealed.get(follower), saga.epoch)
            elif name == "progress":
                await self._progress(uow, event, saga, *args)
            elif name == "move_endpoint":
                target = await replica_sets.row(uow, args[0])
                self.driver.move_endpoint(saga.set_id, (target.address, target.port))
                await self._progress(uow, event, saga, "endpoint_moved", f"the endpoint reaches {args[0]}")
            elif name == "completed":
                await self._completed(uow, event, saga)
            elif name == "failed":
                await self._failed(uow, event, saga, args[0])
        saga.effects.clear()

    async def _progress(self, uow: UnitOfWork, event: Event, saga: Switchover, step: str, detail: str) -> None:
        await uow.emit(T.HEALTH_EVENTS, event.caused("coffer.failover.progressed.v1", {
            "replica_set_id": saga.set_id, "failover_id": saga.op_id, "kind": saga.kind,
            "old_primary_id": saga.old_primary, "new_primary_id": saga.target, "step": step, "detail": detail,
            "epoch": saga.epoch}, subject=saga.set_id, source=SOURCE))

    async def _completed(self, uow: UnitOfWork, event: Event, saga: Switchover) -> None:
        members = [saga.target, *saga.followers]
        await uow.conn.execute(update(instances).where(instances.c.instance_id.in_(members)).values(
            epoch=saga.epoch))
        await uow.conn.execute(update(instances).where(instances.c.instance_id == saga.target).values(
            replica_of=None))
        if saga.followers:
            await uow.conn.execute(update(instances).where(instances.c.instance_id.in_(saga.followers)).values(
                replica_of=saga.target))
        left: tuple[str, ...] = ()
        if saga.kind == "failover":  # the fenced primary leaves the set
            left = (saga.old_primary,)
            await uow.conn.execute(update(instances).where(instances.c.instance_id == saga.old_primary).values(
                replica_of=None, epoch=saga.epoch))
        await uow.conn.execute(update(sets_table).where(sets_table.c.id == saga.set_id).values(
            primary_id=saga.target))
        rs = (await uow.conn.execute(select(sets_table).where(sets_table.c.id == saga.set_id))).one()
        if rs.synchronous and set(saga.followers) - set(saga.followers_failed):
            # synchronous again once it has a follower (a promoted replica starts without)
            await replica_sets.send(uow, event, await replica_sets.row(uow, saga.target), "set_synchronous",
                                    {"enabled": True}, f"cf:-:{saga.target}:1", epoch=saga.epoch)
        duration_ms = int((time.time() - saga.started_at) * 1000)
        if saga.operation_id:
            await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.action_completed.v1", {
                "instance_id": saga.operation_instance, "operation_id": saga.operation_id,
                "action": "promote_to_replica_source" if saga.kind == "promote" else "eject_replica_source",
                "status": "", "output": json.dumps({"new_primary_id": saga.target})},
                subject=saga.operation_instance, source=SOURCE))
        await replica_sets.announce(uow, event, rs, left)
        if saga.kind == "failover":
            await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.failed.v1", {
                "instance_id": saga.old_primary, "operation": "failover", "step": "fenced",
                "message": f"This instance was the primary of its replica set until a failover to {saga.target}: "
                           "it was fenced (powered off) and left the set. Delete it, or keep it for inspection.",
                "details": saga.reason}, subject=saga.old_primary, source=SOURCE))
        await uow.emit(T.HEALTH_EVENTS, event.caused("coffer.failover.completed.v1", {
            "replica_set_id": saga.set_id, "failover_id": saga.op_id, "kind": saga.kind,
            "old_primary_id": saga.old_primary, "new_primary_id": saga.target, "epoch": saga.epoch,
            "duration_ms": duration_ms, "followers_failed": saga.followers_failed},
            subject=saga.set_id, source=SOURCE))
        log(logger, logging.INFO, "switchover completed", replica_set=saga.set_id, kind=saga.kind,
            new_primary=saga.target, duration_ms=duration_ms)

    async def _failed(self, uow: UnitOfWork, event: Event, saga: Switchover, message: str) -> None:
        if saga.operation_id:
            await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.action_failed.v1", {
                "instance_id": saga.operation_instance, "operation_id": saga.operation_id,
                "action": "promote_to_replica_source" if saga.kind == "promote" else "eject_replica_source",
                "status": "", "message": message, "details": ""}, subject=saga.operation_instance, source=SOURCE))
        await uow.emit(T.HEALTH_EVENTS, event.caused("coffer.failover.failed.v1", {
            "replica_set_id": saga.set_id, "failover_id": saga.op_id, "kind": saga.kind,
            "old_primary_id": saga.old_primary, "step": saga.step, "message": message},
            subject=saga.set_id, source=SOURCE))
        log(logger, logging.WARNING, "switchover failed", replica_set=saga.set_id, kind=saga.kind, message=message)
