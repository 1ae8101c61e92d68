"""The API's view of backups, projected from coffer.backup.status_changed.v1 (the
backup service owns the backups; services/api/backups.py serves the view)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from plumbing.envelope import Event

from . import operations, policy
from .faults import Fault, bad_request
from .rest import now
from .tables import backups, instances

RUNNING = ("NEW", "BUILDING", "SAVING")
RESTORABLE = ("COMPLETED", "RESTORED")  # RESTORED: imported (restore_from)
ENDED = ("COMPLETED", "FAILED", "RESTORED")
GB = 1024 ** 3


async def find(conn, request, backup_id: str | None = None):
    return await policy.visible_row(conn, request, backups, backup_id or request.match_info["backup"], "Backup")


async def restore_source(conn, request, restore_point):
    """The backup a restorePoint names (Trove: unknown -> 404, not COMPLETED -> 409),
    and its restore_time (Coffer's extension: ISO-8601), or (None, None)."""
    if restore_point is None:
        return None, None
    if not isinstance(restore_point, dict) or not isinstance(restore_point.get("backupRef"), str):
        raise bad_request("Validation error: instance['restorePoint'] needs a backupRef (a backup id).")
    backup = await find(conn, request, restore_point["backupRef"].rstrip("/").rsplit("/", 1)[-1])
    if backup.status not in RESTORABLE:
        raise Fault(409, f"Backup {backup.id} cannot be restored: it is {backup.status}, not COMPLETED.")
    restore_time = restore_point.get("restore_time")
    if restore_time is not None:
        try:
            moment = datetime.fromisoformat(str(restore_time).replace("Z", "+00:00"))
        except ValueError:
            raise bad_request("Validation error: restorePoint['restore_time'] must be an ISO-8601 time.")
        restore_time = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(
            timezone.utc).isoformat()
    return backup, restore_time


def check_restorable(backup, datastore: str, version: str, restore_time: str | None) -> None:
    if (backup.datastore, backup.datastore_version) != (datastore, version):
        raise bad_request(f"Backup {backup.id} is of {backup.datastore} {backup.datastore_version}; it cannot be "
                          f"restored into {datastore} {version}.")
    if restore_time and datastore not in ("postgresql", "mariadb", "mysql"):
        raise bad_request(f"A restore to a point in time (restore_time) is not available for {datastore}.")
    if restore_time and not backup.instance_id:
        raise bad_request(f"Backup {backup.id} was imported: it has no log archive to restore to a point in time.")


async def check_fits(conn, backup, volume_gb: int) -> None:
    """Trove's BackupTooLarge, at request time: the bytes of the backup's chain (it and
    the backups it builds on) must fit the new instance's volume."""
    total, row = 0, backup
    while row is not None:
        total += row.size_bytes
        row = (await conn.execute(select(backups).where(backups.c.id == row.parent_id))).first() \
            if row.parent_id else None
    if total > volume_gb * GB:
        raise bad_request(f"The volume size ({volume_gb} GB) is smaller than the backup size "
                          f"({total / GB:.2f} GB) of backup {backup.id}: ask for a larger volume.")


async def project(uow, event: Event) -> None:
    """coffer.backup.status_changed.v1 into the view; a backup that ends gives its
    instance back the status it had."""
    d = event.data
    row = (await uow.conn.execute(select(backups).where(backups.c.id == d["backup_id"]))).first()
    if d["status"] == "DELETED":
        await uow.conn.execute(backups.delete().where(backups.c.id == d["backup_id"]))
        return
    if row is None:
        return  # not requested through this API (or already deleted): nothing to show
    if row.status in ENDED + ("DELETE_FAILED",) and d["status"] in RUNNING:
        return  # a late NEW/BUILDING after the end
    await uow.conn.execute(update(backups).where(backups.c.id == row.id).values(
        status=d["status"], message=d["message"], size_bytes=d["size_bytes"], checksum=d["checksum"],
        location=d["location"], updated_at=operations.event_time(event)))
    if d["status"] in ENDED and row.status not in ENDED:
        await uow.conn.execute(update(instances).where(
            instances.c.id == row.instance_id, instances.c.task == "backup").values(
            task=None, status=row.instance_status_before, updated_at=now()))


async def expire_unanswered(store, timeout: float) -> int:
    """The net under the backup service's own deadline (a service down for long): a
    backup still running after `timeout` seconds is shown FAILED and its instance gets
    its status back, so no instance stays BACKUP forever."""
    cutoff = now() - timedelta(seconds=timeout)
    async with store.uow() as uow:
        stale = (await uow.conn.execute(select(backups).where(
            backups.c.status.in_(RUNNING), backups.c.updated_at < cutoff))).all()
        for row in stale:
            await uow.conn.execute(update(backups).where(backups.c.id == row.id).values(
                status="FAILED", message=f"The backup service did not report on this backup within {timeout:.0f} s.",
                updated_at=now()))
            await uow.conn.execute(update(instances).where(
                instances.c.id == row.instance_id, instances.c.task == "backup").values(
                task=None, status=row.instance_status_before, updated_at=now()))
    return len(stale)
