"""Backup schedules and retention (Coffer's extension; Trove needs Mistral for it): per
instance, a cron schedule for full and incremental backups and a retention policy,
which the backup service keeps, fires and applies.

The API asks (coffer.backup.schedule_requested.v1) and shows what this service
announces (coffer.backup.schedule_changed.v1). A due schedule is announced as
coffer.backup.schedule_fired.v1: the API, which knows whether the instance is busy,
starts the backup as a request would. Any backup service process may fire a due
schedule: it claims the firing by moving next_*_at forward only if nobody else did,
so each firing is announced once. Retention (services/backup/retention.py) runs each
time one of the instance's backups completes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from plumbing import topics as T
from plumbing.cron import Cron
from plumbing.envelope import Event, utcnow
from plumbing.outbox import Store, UnitOfWork

from . import retention
from .tables import backups, schedules

SOURCE = "backup"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _changed(cause: Event, instance_id: str, project_id: str, row=None) -> Event:
    """The schedule as it now is; no row: removed."""
    event = cause.caused("coffer.backup.schedule_changed.v1", {
        "instance_id": instance_id, "project_id": project_id,
        "full": row.full_cron if row else None, "incremental": row.incremental_cron if row else None,
        "keep_last_chains": row.keep_last_chains if row else None, "keep_days": row.keep_days if row else None,
        "next_full_at": _iso(row.next_full_at) if row else None,
        "next_incremental_at": _iso(row.next_incremental_at) if row else None},
        subject=instance_id, source=SOURCE)
    event.project = project_id
    return event


async def requested(uow: UnitOfWork, event: Event) -> None:
    """Set (replacing) or remove (full null) an instance's schedule. The API checked
    the cron expressions; one that does not parse here removes nothing and sets nothing."""
    d, moment = event.data, utcnow()
    await uow.conn.execute(delete(schedules).where(schedules.c.instance_id == d["instance_id"]))
    if d.get("full"):
        full = Cron.parse(d["full"])
        incremental = Cron.parse(d["incremental"]) if d.get("incremental") else None
        await uow.conn.execute(schedules.insert().values(
            instance_id=d["instance_id"], project_id=d["project_id"], full_cron=full.expression,
            incremental_cron=incremental.expression if incremental else None,
            keep_last_chains=d.get("keep_last_chains"), keep_days=d.get("keep_days"),
            next_full_at=full.next_after(moment),
            next_incremental_at=incremental.next_after(moment) if incremental else None))
    row = (await uow.conn.execute(select(schedules).where(schedules.c.instance_id == d["instance_id"]))).first()
    await uow.emit(T.BACKUP_EVENTS, _changed(event, d["instance_id"], d["project_id"], row))


async def forget(uow: UnitOfWork, cause: Event, instance_id: str) -> None:
    """A deleted instance's schedule goes with it (its backups stay)."""
    row = (await uow.conn.execute(select(schedules).where(schedules.c.instance_id == instance_id))).first()
    if row is None:
        return
    await uow.conn.execute(delete(schedules).where(schedules.c.instance_id == instance_id))
    await uow.emit(T.BACKUP_EVENTS, _changed(cause, instance_id, row.project_id))


async def expired_chains(uow: UnitOfWork, instance_id: str) -> list[str]:
    """The full backups whose chains the instance's retention policy lets go (none
    without a schedule)."""
    row = (await uow.conn.execute(select(schedules).where(schedules.c.instance_id == instance_id))).first()
    if row is None:
        return []
    rows = (await uow.conn.execute(select(backups).where(backups.c.instance_id == instance_id))).all()
    return retention.expired_chains([retention.Backup(r.id, r.parent_id, r.status, r.created_at) for r in rows],
                                    row.keep_last_chains, row.keep_days, utcnow())


async def fire_due(store: Store, moment: datetime | None = None) -> int:
    """Announce the schedules whose time has come; how many fired."""
    moment = moment or utcnow()
    async with store.engine.connect() as conn:
        due = (await conn.execute(select(schedules).where(
            (schedules.c.next_full_at <= moment) | (schedules.c.next_incremental_at <= moment)))).all()
    fired = 0
    for row in due:
        fired += await fire(store, row, moment)
    return fired


async def fire(store: Store, row, moment: datetime) -> int:
    """1 if this process claimed the firing of `row` (as read) and announced it, else 0.
    A full backup due with an incremental one is the one backup taken."""
    full_due = row.next_full_at <= moment
    changes = {"next_full_at": Cron.parse(row.full_cron).next_after(moment)} if full_due else {}
    if row.next_incremental_at and row.next_incremental_at <= moment:
        changes["next_incremental_at"] = Cron.parse(row.incremental_cron).next_after(moment)
    async with store.uow() as uow:
        claimed = await uow.conn.execute(update(schedules).where(
            schedules.c.instance_id == row.instance_id, schedules.c.next_full_at == row.next_full_at,
            schedules.c.next_incremental_at.is_not_distinct_from(row.next_incremental_at)).values(**changes))
        if claimed.rowcount != 1:
            return 0  # another process fired it, or it changed meanwhile
        event = Event("coffer.backup.schedule_fired.v1", row.instance_id, source=SOURCE, project=row.project_id,
                      data={"instance_id": row.instance_id, "project_id": row.project_id,
                            "kind": "full" if full_due else "incremental",
                            "due_at": (row.next_full_at if full_due else row.next_incremental_at).isoformat()})
        await uow.emit(T.BACKUP_EVENTS, event)
        fresh = (await uow.conn.execute(select(schedules).where(schedules.c.instance_id == row.instance_id))).one()
        await uow.emit(T.BACKUP_EVENTS, _changed(event, row.instance_id, row.project_id, fresh))
    return 1
