"""The API's read model, kept from the public and agent events."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, update

from plumbing import sealing
from plumbing import topics as T
from plumbing.envelope import Event
from plumbing.outbox import Store, UnitOfWork

from . import access, accounts_view, backup_schedules, backup_strategies, backups_view, operations, replication
from .tables import datastore_versions, datastores, deliveries, guest_heartbeats, instances, pending_credentials
from .rest import now
from .vault import Vault

SOURCE = "api"
NAMESPACE = uuid.UUID("6f1c1f0e-8a55-4c1e-9d43-3c0ffee00001")


class Projections:
    def __init__(self, store: Store):
        self.store = store
        self.vault = Vault()
        self.routes = {
            "coffer.instance.provisioning.v1": self.provisioning,
            "coffer.instance.restarting.v1": self.restarting,
            "coffer.instance.active.v1": self.active,
            "coffer.instance.failed.v1": self.failed,
            "coffer.instance.deleted.v1": self.deleted,
            "coffer.instance.action_completed.v1": operations.finish,
            "coffer.instance.action_failed.v1": operations.finish,
            "coffer.health.changed.v1": self.health,
            "coffer.instance.replication_changed.v1": replication.replication_changed,
            "coffer.agent.registered.v1": self.agent_registered,
            "coffer.datastore.version_available.v1": self.version_available,
            "coffer.subscription.delivery_attempted.v1": self.delivery_attempted,
            "coffer.backup.status_changed.v1": backups_view.project,
            "coffer.backup.strategy_changed.v1": backup_strategies.project,
            "coffer.backup.schedule_changed.v1": backup_schedules.project,
            "coffer.backup.schedule_fired.v1": backup_schedules.fired,
        }

    async def handle(self, event: Event) -> None:
        async def apply(uow: UnitOfWork):
            await self.routes[event.type](uow, event)
        await self.store.handled_once(event, apply)

    async def handle_batch(self, events: list[Event]) -> None:
        async def apply(uow: UnitOfWork, event: Event):
            await self.routes[event.type](uow, event)
        await self.store.handled_batch(events, apply)

    async def _set(self, uow: UnitOfWork, instance_id: str, **values) -> None:
        await uow.conn.execute(update(instances).where(instances.c.id == instance_id)
                               .values(updated_at=now(), **values))

    async def provisioning(self, uow, event):
        d = event.data
        await self._set(uow, d["instance_id"], address=d["address"], host=d["host"], zone=d["zone"])

    async def restarting(self, uow, event):
        await self._health(uow, event.data["instance_id"], "RESTARTING", operations.event_time(event))

    async def active(self, uow, event):
        d = event.data
        row = (await uow.conn.execute(select(instances.c.task, instances.c.datastore).where(
            instances.c.id == d["instance_id"]))).first()
        if row is None or row.task == "delete":
            return  # deleted meanwhile: the delete wins
        await self._set(uow, d["instance_id"], status="ACTIVE", operating_status=d["operating_status"],
                        health_at=operations.event_time(event),
                        address=d["address"], host=d["host"], zone=d["zone"], fault_message=None,
                        fault_details=None, fault_at=None,
                        **access.public_columns(d.get("public_address", ""), d.get("public_port", 0)))
        await accounts_view.instance_active(uow.conn, d["instance_id"], row.datastore, d.get("accounts"))

    async def failed(self, uow, event):
        d = event.data
        row = (await uow.conn.execute(select(instances.c.task).where(instances.c.id == d["instance_id"]))).first()
        if row is None or row.task == "delete" and d["operation"] != "delete":
            return  # a delete is under way and wins over a late failure of something else
        await self._set(uow, d["instance_id"], status="ERROR", operating_status="ERROR", address=None, task=None,
                        fault_message=d["message"], fault_details=d["details"], fault_at=now())
        await uow.conn.execute(delete(pending_credentials).where(
            pending_credentials.c.instance_id == d["instance_id"]))
        await accounts_view.drop_requested(uow.conn, d["instance_id"])

    async def deleted(self, uow, event):
        instance_id = event.data["instance_id"]
        await uow.conn.execute(delete(instances).where(instances.c.id == instance_id))
        await uow.conn.execute(delete(pending_credentials).where(pending_credentials.c.instance_id == instance_id))
        await uow.conn.execute(delete(guest_heartbeats).where(guest_heartbeats.c.instance_id == instance_id))
        await accounts_view.forget(uow.conn, instance_id)

    async def health(self, uow, event):
        d = event.data
        await self._health(uow, d["instance_id"], d["status"], d["observed_at"])

    async def _health(self, uow, instance_id: str, status: str, observed_at: datetime) -> None:
        """Reports about one instance travel different topics (agent, provisioner,
        monitor) and may arrive out of order: only a newer one changes the status."""
        row = (await uow.conn.execute(select(instances.c.status, instances.c.health_at).where(
            instances.c.id == instance_id))).first()
        if row is None or row.status not in operations.RUNNING or (row.health_at and row.health_at >= observed_at):
            return
        await uow.conn.execute(update(instances).where(instances.c.id == instance_id).values(
            operating_status=status, health_at=observed_at, updated_at=now()))

    async def agent_registered(self, uow, event):
        """A (re)started agent: its engine is on its way up, and any waiting
        passwords are sealed to its key and handed on."""
        d = event.data
        await self._health(uow, d["instance_id"], "RESTARTING", operations.event_time(event))
        await uow.conn.execute(update(instances).where(instances.c.id == d["instance_id"]).values(
            agent_public_key=d["public_key"]))
        # an engine the agent starts afresh reads every setting; one it adopts may still wait for a restart
        before, after = ("ACTIVE", "RESTART_REQUIRED") if d["restart_pending"] else ("RESTART_REQUIRED", "ACTIVE")
        await uow.conn.execute(update(instances).where(
            instances.c.id == d["instance_id"], instances.c.task.is_(None), instances.c.status == before).values(
            status=after, updated_at=now()))
        row = (await uow.conn.execute(select(pending_credentials).where(
            pending_credentials.c.instance_id == d["instance_id"]))).first()
        if row is None:
            return
        sealed = sealing.seal(d["public_key"], self.vault.unlock(row.box))
        await uow.emit(T.INSTANCE_REQUESTS, event.caused("coffer.instance.credentials_sealed.v1", {
            "instance_id": d["instance_id"], "agent_public_key": d["public_key"], "sealed": sealed},
            source=SOURCE))
        await uow.conn.execute(delete(pending_credentials).where(
            pending_credentials.c.instance_id == d["instance_id"]))

    async def version_available(self, uow, event):
        d = event.data
        ds_id = str(uuid.uuid5(NAMESPACE, d["datastore"]))
        ver_id = str(uuid.uuid5(NAMESPACE, f"{d['datastore']}:{d['version']}"))
        ds = (await uow.conn.execute(select(datastores.c.default_chosen).where(datastores.c.id == ds_id))).first()
        if ds is None:
            await uow.conn.execute(datastores.insert().values(id=ds_id, name=d["datastore"]))
        known = (await uow.conn.execute(select(datastore_versions.c.name).where(
            datastore_versions.c.id == ver_id))).first()
        if known is None:
            await uow.conn.execute(datastore_versions.insert().values(
                id=ver_id, datastore_id=ds_id, name=d["version"], version=d["version_number"], manager=d["manager"]))
        elif known.name == d["version"]:  # also one an administrator registered first: a driver runs it now
            await uow.conn.execute(update(datastore_versions).where(datastore_versions.c.id == ver_id)
                                   .values(version=d["version_number"], manager=d["manager"], offered=True))
        # else an administrator renamed it (mgmt_versions.py): no version has the driver's name any more
        if ds is not None and ds.default_chosen:
            return  # an administrator picked the default (or none): the offers leave it
        # else the newest version a driver runs and an administrator did not switch off is the default
        versions = (await uow.conn.execute(select(datastore_versions).where(
            datastore_versions.c.datastore_id == ds_id, datastore_versions.c.offered.is_(True),
            datastore_versions.c.active.is_(True)))).all()
        if versions:
            newest = max(versions, key=lambda v: [int(x) for x in v.version.split(".") if x.isdigit()])
            await uow.conn.execute(update(datastores).where(datastores.c.id == ds_id)
                                   .values(default_version_id=newest.id))

    async def delivery_attempted(self, uow, event):
        d = event.data
        values = dict(subscription_id=d["subscription_id"], event_id=d["event_id"], event_type=d["event_type"],
                      resource_id=d["resource_id"], attempts=d["attempt"], status=d["status"],
                      last_status_code=d["status_code"], last_error=d["error"],
                      next_attempt_at=d["next_attempt_at"], updated_at=d["attempted_at"])
        known = (await uow.conn.execute(select(deliveries.c.attempts).where(
            deliveries.c.id == d["delivery_id"]))).first()
        if known is None:
            await uow.conn.execute(deliveries.insert().values(id=d["delivery_id"], **values))
        elif known.attempts <= d["attempt"]:  # an older attempt arriving late changes nothing
            await uow.conn.execute(update(deliveries).where(deliveries.c.id == d["delivery_id"]).values(**values))
