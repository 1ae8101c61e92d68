"""Provisioner handlers: each runs in one unit of work (state + inbox + outbox)."""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import datetime, timezone

from sqlalchemy import delete, select, update

from plumbing import metrics, tracing
from plumbing import topics as T
from plumbing.envelope import Event
from plumbing.logs import log
from plumbing.outbox import Store, UnitOfWork

from . import replica_sets
from .actions import ActionSaga
from .drivers import ComputeDriver, LaunchSpec
from .saga import CreateSaga
from .switchovers import ACTIONS as SWITCHOVER_ACTIONS
from .switchovers import Stale as SwitchoverStale
from .switchovers import Switchovers
from .tables import instances, operations

SOURCE = "provisioner"
# action -> the key of the instance's spec its success changes (a relaunch, or a
# restart's reopening of public access, uses the spec)
SPEC_CHANGES = {"resize": "flavor", "resize_volume": "volume_gb", "set_access": "access"}
logger = logging.getLogger("provisioner")


def _inventoried(prepared: Event) -> dict | None:
    """The accounts a prepare's result found in restored data (None: it was not asked)."""
    return json.loads(prepared.data.get("output") or "{}").get("accounts")


class StaleOperation(Exception):
    """The saga row changed under us; the consumer retries the event."""


def now() -> datetime:
    return datetime.now(timezone.utc)


class Provisioner:
    def __init__(self, store: Store, driver: ComputeDriver, kafka_bootstrap: str):
        self.store, self.driver, self.kafka_bootstrap = store, driver, kafka_bootstrap
        self.switchovers = Switchovers(store, driver)

    # -- saga persistence ---------------------------------------------------
    async def _load(self, uow: UnitOfWork, instance_id: str):
        row = (await uow.conn.execute(select(operations).where(
            operations.c.op_id == f"{instance_id}:create", operations.c.finished.is_(False)))).first()
        if row is None:
            return None, None
        return row, CreateSaga.from_row(row.step, json.loads(row.data))

    async def _save(self, uow: UnitOfWork, row, saga: CreateSaga, step_changed: bool) -> None:
        values = dict(step=saga.step, data=json.dumps(saga.to_dict()), version=row.version + 1,
                      finished=saga.step in ("done", "failed"))
        if step_changed and not values["finished"]:
            values["deadline"] = saga.deadline(now())
        result = await uow.conn.execute(update(operations).where(
            operations.c.op_id == row.op_id, operations.c.version == row.version).values(**values))
        if result.rowcount != 1:
            raise StaleOperation(row.op_id)

    async def _advance(self, event: Event, instance_id: str, change) -> None:
        """Load the running create saga, apply `change`, persist, perform effects."""
        ended: list[CreateSaga] = []

        async def apply(uow: UnitOfWork):
            ended.clear()
            row, saga = await self._load(uow, instance_id)
            if saga is None:
                return  # no create running (finished, failed or deleted): nothing to do
            before = saga.step
            fault = change(saga)
            await self._perform(uow, event, instance_id, saga, fault, before)
            await self._save(uow, row, saga, saga.step != before)
            if saga.step in ("done", "failed"):
                ended.append(saga)
        await self.store.handled_once(event, apply)
        for saga in ended:  # counted once the outcome is committed
            metrics.saga_finished("create", saga.step, time.time() - saga.started_at)

    async def _perform(self, uow: UnitOfWork, event: Event, instance_id: str, saga: CreateSaga,
                       fault: str | None, step_before: str) -> None:
        inst = (await uow.conn.execute(select(instances).where(instances.c.instance_id == instance_id))).one()
        spec = json.loads(inst.spec)
        for effect in saga.effects:
            if effect == "launch":
                await self._launch(uow, event, inst, spec)
            elif effect == "source":
                await replica_sets.start_sourcing(uow, event, inst, saga)
            elif effect == "prepare" and inst.replica_of:
                await replica_sets.start_following(uow, event, inst, saga)
            elif effect == "prepare":
                saga.prepare_command_id = str(uuid.uuid4())
                await uow.emit(T.AGENT_COMMANDS, event.caused("coffer.agent.prepare.v1", {
                    "instance_id": instance_id, "command_id": saga.prepare_command_id, "epoch": inst.epoch,
                    "databases": spec["databases"], "users": spec["users"],
                    "sealed_credentials": saga.sealed_credentials, "inventory": saga.restored}, source=SOURCE))
            elif effect == "restore":
                await uow.emit(T.BACKUP_REQUESTS, event.caused("coffer.backup.restore_requested.v1", {
                    "instance_id": instance_id, "project_id": inst.project_id,
                    "backup_id": saga.restore["backup_id"], "restore_time": saga.restore.get("restore_time"),
                    "agent_public_key": saga.agent_public_key}, subject=saga.restore["backup_id"], source=SOURCE))
            elif effect == "activate":
                inst = (await uow.conn.execute(select(instances).where(
                    instances.c.instance_id == instance_id))).one()
                try:
                    public_address, public_port = await self._apply_access(inst, spec.get("access"))
                except Exception as exc:
                    await self._fail(uow, event, instance_id, "create", step_before,
                                     "The instance could not be made public.", f"{type(exc).__name__}: {exc}")
                    continue
                await uow.conn.execute(update(instances).where(instances.c.instance_id == instance_id)
                                       .values(status="ACTIVE"))
                await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.active.v1", {
                    "instance_id": instance_id, "address": inst.address, "port": inst.port,
                    "host": inst.host, "zone": inst.zone, "operating_status": "HEALTHY",
                    "engine_version": spec.get("version_number", ""), "public_address": public_address,
                    "public_port": public_port, "accounts": _inventoried(event)}, source=SOURCE))
                if inst.replica_of:
                    await replica_sets.replica_active(uow, event, self.driver, inst)
            elif effect == "fail":
                await self._fail(uow, event, instance_id, "create", step_before,
                                 fault or "The database could not be prepared.")
        saga.effects.clear()

    async def _launch(self, uow: UnitOfWork, event: Event, inst, spec: dict) -> None:
        address = inst.address
        if address is None:
            taken = {r.address for r in (await uow.conn.execute(
                select(instances.c.address).where(instances.c.address.is_not(None)))).all()}
            address = self.driver.allocate_address(taken)
        port = spec["port"]
        await uow.conn.execute(update(instances).where(instances.c.instance_id == inst.instance_id)
                               .values(address=address, port=port))
        launch = self._launch_spec(inst, spec, address, tracing.current_traceparent())
        self.driver.launch(launch, self.kafka_bootstrap)
        await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.provisioning.v1", {
            "instance_id": inst.instance_id, "host": inst.host, "zone": inst.zone,
            "address": address, "port": port}, source=SOURCE))

    @staticmethod
    def _launch_spec(inst, spec: dict, address: str, traceparent: str = "") -> LaunchSpec:
        return LaunchSpec(instance_id=inst.instance_id, project_id=inst.project_id, host=inst.host, address=address,
                          port=spec["port"], datastore=spec["datastore"], version=spec["datastore_version"],
                          ram_mb=spec["flavor"]["ram_mb"], vcpus=spec["flavor"]["vcpus"],
                          volume_gb=spec["volume_gb"], initial_configuration=spec.get("configuration", "{}"),
                          traceparent=traceparent)

    async def _fail(self, uow: UnitOfWork, event: Event, instance_id: str, operation: str, step: str,
                    message: str, details: str = "") -> None:
        """ERROR with a fault, and what was half-built cleaned up."""
        self.driver.destroy(instance_id)
        await uow.conn.execute(update(instances).where(instances.c.instance_id == instance_id)
                               .values(status="ERROR", address=None))
        await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.failed.v1", {
            "instance_id": instance_id, "operation": operation, "step": step,
            "message": message, "details": details}, source=SOURCE))
        log(logger, logging.WARNING, "operation failed", instance_id=instance_id, operation=operation,
            step=step, message=message)

    # -- event handlers -----------------------------------------------------
    async def create_requested(self, event: Event, offers: dict) -> None:
        d = event.data

        async def apply(uow: UnitOfWork):
            if (await uow.conn.execute(select(instances.c.instance_id).where(
                    instances.c.instance_id == d["instance_id"]))).first():
                return
            offer = offers.get((d["datastore"], d["datastore_version"]))
            if offer is None:  # the API offered it, but this provisioner's driver cannot run it
                await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.failed.v1", {
                    "instance_id": d["instance_id"], "operation": "create", "step": "accepting",
                    "message": f"{d['datastore']} {d['datastore_version']} cannot be run here any more.",
                    "details": ""}, source=SOURCE))
                return
            spec = dict(d, port=offer.port, version_number=offer.version_number,
                        access=json.loads(d.get("access") or "{}"))
            primary = await replica_sets.row(uow, d["replica_of"]) if d.get("replica_of") else None
            await uow.conn.execute(instances.insert().values(
                instance_id=d["instance_id"], project_id=d["project_id"], spec=json.dumps(spec),
                status="BUILD", epoch=primary.epoch if primary else 1,
                replica_of=primary.instance_id if primary else None))
            restore = ({"backup_id": d["restore_backup_id"], "restore_time": d.get("restore_time")}
                       if d.get("restore_backup_id") else None)
            saga = CreateSaga(needs_credentials=bool(d["users"]), started_at=time.time(), restore=restore,
                              replica_of=primary.instance_id if primary else None)
            await uow.conn.execute(operations.insert().values(
                op_id=f"{d['instance_id']}:create", instance_id=d["instance_id"], kind="create",
                step=saga.step, deadline=saga.deadline(now()), data=json.dumps(saga.to_dict()),
                finished=False, version=0))
        await self.store.handled_once(event, apply)

    async def placed(self, event: Event) -> None:
        d = event.data

        async def apply(uow: UnitOfWork):
            await uow.conn.execute(update(instances).where(instances.c.instance_id == d["instance_id"])
                                   .values(host=d["host"], zone=d["zone"]))
        # host and zone first, so the launch effect sees them
        async with self.store.uow() as uow:
            await apply(uow)
        await self._advance(event, d["instance_id"], lambda saga: saga.placed())

    async def placement_failed(self, event: Event) -> None:
        def change(saga: CreateSaga):
            saga.step = "failed"
            saga.effects.append("fail")
            return event.data["reason"]
        await self._advance(event, event.data["instance_id"], change)

    async def agent_registered(self, event: Event) -> None:
        d = event.data

        async def record_key(uow: UnitOfWork):
            await uow.conn.execute(update(instances).where(instances.c.instance_id == d["instance_id"])
                                   .values(agent_public_key=d["public_key"]))
        async with self.store.uow() as uow:
            await record_key(uow)
        await self._advance(event, d["instance_id"], lambda saga: saga.agent_registered(d["public_key"]))

    async def credentials_sealed(self, event: Event) -> None:
        d = event.data
        await self._advance(event, d["instance_id"],
                            lambda saga: saga.credentials_arrived(d["sealed"], d["agent_public_key"]))

    async def command_result(self, event: Event) -> None:
        d = event.data
        if d["command_id"].startswith("create:"):  # a replica's create: its primary's and its own steps
            await self._replica_step(event)
            return
        if d["command_id"].startswith("sw:"):  # a replica set changing its primary
            await self.switchovers.command_result(event)
            return
        if d["command_id"].startswith("dt:"):  # a replica detached
            await self.switchovers.detach_result(event)
            return
        if d["command_id"].startswith("cf:"):  # a replica set's settings
            await self.switchovers.configure_result(event)
            return
        if d["command"] != "prepare":
            output = json.loads(d.get("output") or "{}")
            await self._advance_action(event, d["command_id"].rsplit(":", 1)[0], lambda saga: saga.agent_reported(
                d["command_id"], d["success"], d["error"], d["engine_running"], d["restart_pending"], output))
            return

        def change(saga: CreateSaga):
            saga.prepare_finished(d["command_id"], d["success"])
            return None if d["success"] else f"The database could not be prepared: {d['error']}"
        await self._advance(event, d["instance_id"], change)

    async def restore_finished(self, event: Event) -> None:
        d = event.data
        await self._advance(event, d["instance_id"], lambda saga: saga.restore_finished(d["success"], d["message"]))

    async def _replica_step(self, event: Event) -> None:
        d = event.data
        _, replica_id, stage = d["command_id"].split(":", 2)

        def change(saga: CreateSaga):
            if stage == "source":
                saga.source_finished(d["command_id"], d["success"])
                return None if d["success"] else f"The primary could not serve a replica: {d['error']}"
            saga.prepare_finished(d["command_id"], d["success"])
            return None if d["success"] else f"The replica could not copy its primary: {d['error']}"
        await self._advance(event, replica_id, change)

    async def claim_resized(self, event: Event) -> None:
        """The scheduler's answer to a resize_claim step."""
        d = event.data
        success = event.type == "coffer.placement.resized.v1"
        await self._advance_action(event, d["request_id"].rsplit(":", 1)[0], lambda saga: saga.scheduler_reported(
            d["request_id"], success, d.get("reason", "")))

    async def delete_requested(self, event: Event) -> None:
        instance_id = event.data["instance_id"]

        async def apply(uow: UnitOfWork):
            await uow.conn.execute(update(operations).where(
                operations.c.instance_id == instance_id, operations.c.finished.is_(False))
                .values(finished=True, step="cancelled"))
            started = time.monotonic()
            try:
                self.driver.destroy(instance_id)
            except Exception as exc:  # the user sees ERROR and can delete again
                log(logger, logging.WARNING, "instance not destroyed", exc_info=True, instance_id=instance_id)
                await uow.conn.execute(update(instances).where(instances.c.instance_id == instance_id)
                                       .values(status="ERROR"))
                await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.failed.v1", {
                    "instance_id": instance_id, "operation": "delete", "step": "destroy",
                    "message": "The instance could not be deleted; delete it again.",
                    "details": f"{type(exc).__name__}: {exc}"}, source=SOURCE))
                return
            log(logger, logging.INFO, "instance destroyed", instance_id=instance_id,
                seconds=round(time.monotonic() - started, 1))
            gone = (await uow.conn.execute(select(instances).where(instances.c.instance_id == instance_id))).first()
            await uow.conn.execute(delete(instances).where(instances.c.instance_id == instance_id))
            if gone is not None:
                await replica_sets.member_deleted(uow, event, self.driver, gone)
            await uow.emit(T.INSTANCE_EVENTS, event.caused(
                "coffer.instance.deleted.v1", {"instance_id": instance_id}, source=SOURCE))
        await self.store.handled_once(event, apply)

    # -- day-2 actions ----------------------------------------------------------
    async def action_requested(self, event: Event) -> None:
        d = event.data
        if d["action"] in SWITCHOVER_ACTIONS:
            await self.switchovers.action_requested(event)
            return
        if d["action"] == "detach_replica":
            await self.switchovers.detach_requested(event)
            return
        if d["action"] == "set_replication":
            await self.switchovers.configure_requested(event)
            return
        ended: list[ActionSaga] = []

        async def apply(uow: UnitOfWork):
            inst = (await uow.conn.execute(select(instances).where(
                instances.c.instance_id == d["instance_id"]))).first()
            saga = ActionSaga.begin(d["operation_id"], d["action"], json.loads(d["arguments"]), d.get("sealed"),
                                    time.time())
            if inst is None or inst.status != "ACTIVE":
                saga.effects.clear()
                saga.refused("The instance is not ready for actions: it is still being built, or it failed.")
            await uow.conn.execute(operations.insert().values(
                op_id=saga.operation_id, instance_id=d["instance_id"], kind="action", step=saga.outcome,
                deadline=saga.deadline(now()), data=json.dumps(saga.to_dict()),
                finished=saga.outcome != "running", version=0))
            await self._perform_action(uow, event, d["instance_id"], inst, saga)
            if saga.outcome != "running":
                ended.append(saga)
        await self.store.handled_once(event, apply)
        self._count_ended(ended)

    async def _advance_action(self, event: Event, operation_id: str, change) -> None:
        """Load the running action saga, apply `change`, persist, perform effects."""
        ended: list[ActionSaga] = []

        async def apply(uow: UnitOfWork):
            ended.clear()
            row = (await uow.conn.execute(select(operations).where(
                operations.c.op_id == operation_id, operations.c.kind == "action",
                operations.c.finished.is_(False)))).first()
            if row is None:
                return  # finished, timed out or cancelled by a delete
            saga = ActionSaga.from_dict(json.loads(row.data))
            index = saga.index
            change(saga)
            inst = (await uow.conn.execute(select(instances).where(
                instances.c.instance_id == row.instance_id))).first()
            await self._perform_action(uow, event, row.instance_id, inst, saga)
            values = dict(step=saga.outcome, data=json.dumps(saga.to_dict()), version=row.version + 1,
                          finished=saga.outcome != "running")
            if saga.index != index:
                values["deadline"] = saga.deadline(now())
            result = await uow.conn.execute(update(operations).where(
                operations.c.op_id == row.op_id, operations.c.version == row.version).values(**values))
            if result.rowcount != 1:
                raise StaleOperation(row.op_id)
            if saga.outcome != "running":
                ended.append(saga)
        await self.store.handled_once(event, apply)
        self._count_ended(ended)

    @staticmethod
    def _count_ended(sagas: list[ActionSaga]) -> None:
        for saga in sagas:  # counted once the outcome is committed
            metrics.saga_finished(saga.action, saga.outcome, time.time() - saga.started_at)

    async def _perform_action(self, uow: UnitOfWork, event: Event, instance_id: str, inst,
                              saga: ActionSaga) -> None:
        for effect in saga.effects:  # a compute step adds the next step's effects as it goes
            if effect == "send" and saga.step.kind == "compute":
                error, output = await self._compute(inst, saga.step)
                saga.compute_reported(saga.command_id, not error, error, output)
            elif effect == "send" and saga.step.kind == "scheduler":
                await uow.emit(T.INSTANCE_REQUESTS, event.caused("coffer.placement.resize_requested.v1", {
                    "instance_id": instance_id, "request_id": saga.command_id, **saga.step.arguments},
                    subject=instance_id, source=SOURCE))
            elif effect == "send":
                step = saga.step
                await uow.emit(T.AGENT_COMMANDS, event.caused("coffer.agent.command.v1", {
                    "instance_id": instance_id, "command_id": saga.command_id, "epoch": inst.epoch,
                    "command": step.command, "arguments": json.dumps(step.arguments), "sealed": saga.sealed},
                    subject=instance_id, source=SOURCE))
            elif effect == "completed":
                if saga.action in SPEC_CHANGES:
                    key = SPEC_CHANGES[saga.action]
                    spec = dict(json.loads(inst.spec), **{key: saga.arguments[key]})
                    await uow.conn.execute(update(instances).where(instances.c.instance_id == instance_id)
                                           .values(spec=json.dumps(spec)))
                await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.action_completed.v1", {
                    "instance_id": instance_id, "operation_id": saga.operation_id, "action": saga.action,
                    "status": saga.status, "output": json.dumps(saga.output)}, subject=instance_id, source=SOURCE))
            elif effect == "failed":
                await uow.emit(T.INSTANCE_EVENTS, event.caused("coffer.instance.action_failed.v1", {
                    "instance_id": instance_id, "operation_id": saga.operation_id, "action": saga.action,
                    "status": saga.status, "message": saga.message, "details": ""},
                    subject=instance_id, source=SOURCE))
                log(logger, logging.WARNING, "action failed", instance_id=instance_id, action=saga.action,
                    message=saga.message)
        saga.effects.clear()

    async def _compute(self, inst, step) -> tuple[str, dict]:
        """A compute step, done here by the driver: ("" or what went wrong, its output)."""
        try:
            if step.command == "grow_volume":
                await asyncio.to_thread(self.driver.grow_volume, inst.instance_id, step.arguments["volume_gb"])
                return "", {}
            if step.command == "set_access":
                address, port = await self._apply_access(inst, step.arguments["access"])
                return "", {"public_address": address, "public_port": port}
            raise ValueError(f"no compute step {step.command!r}")
        except Exception as exc:  # the saga undoes what was done and says why
            return f"{type(exc).__name__}: {exc}", {}

    async def _apply_access(self, inst, access: dict | None) -> tuple[str, int]:
        """Open (or change, or close) the instance's public forwarder; it always points
        at the instance's own address, so it follows the instance, not a replica set's
        primary. Returns its (address, port), the port 0 when it is the engine's own;
        ("", 0) for a private instance."""
        if access and access.get("is_public"):
            address, port = await asyncio.to_thread(self.driver.open_public, inst.instance_id,
                                                    (inst.address, inst.port), access["allowed_cidrs"])
            return address, 0 if port == inst.port else port
        await asyncio.to_thread(self.driver.close_public, inst.instance_id)
        return "", 0

    # -- background duties --------------------------------------------------
    async def expire_deadlines(self) -> int:
        """Fail every saga whose current step outlived its deadline."""
        async with self.store.engine.connect() as conn:
            due = (await conn.execute(select(operations.c.op_id, operations.c.instance_id, operations.c.kind).where(
                operations.c.finished.is_(False), operations.c.deadline < now()))).all()
        for op_id, instance_id, kind in due:
            tick = Event("coffer.internal.deadline", instance_id, {}, source=SOURCE)
            try:
                if kind == "create":
                    await self._advance(tick, instance_id, lambda saga: saga.expired())
                elif kind == "switchover":
                    await self.switchovers.expired(op_id)
                else:
                    await self._advance_action(tick, op_id, lambda saga: saga.expired())
            except (StaleOperation, SwitchoverStale):
                pass  # an event moved it on meanwhile; look again next tick
        return len(due)

    async def restore_running_instances(self) -> int:
        """After a restart of the whole stack, bring back the agents of instances that
        should be running (their data directories are still there)."""
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(instances).where(
                instances.c.status.in_(["ACTIVE", "BUILD"]), instances.c.address.is_not(None)))).all()
        count = 0
        for inst in rows:
            if inst.status == "ACTIVE" and json.loads(inst.spec).get("access", {}).get("is_public"):
                try:  # detached, its forwarder outlives a provisioner restart, not a stack's
                    await self._apply_access(inst, json.loads(inst.spec)["access"])
                except Exception as exc:
                    log(logger, logging.WARNING, "public access not reopened", instance_id=inst.instance_id,
                        error=f"{type(exc).__name__}: {exc}")
            if self.driver.is_running(inst.instance_id):
                continue
            async with self.store.uow() as uow:
                await uow.emit(T.INSTANCE_EVENTS, Event(
                    "coffer.instance.restarting.v1", inst.instance_id, source=SOURCE, project=inst.project_id,
                    data={"instance_id": inst.instance_id, "reason": "its agent was not running"}))
            self.driver.launch(self._launch_spec(inst, json.loads(inst.spec), inst.address), self.kafka_bootstrap)
            count += 1
        return count
