"""The API's view of backups, projected from coffer.backup.status_changed.v1 (the
backup service owns the backups; services/api/backups.py serves the view)."""
from __future__ import annotations

from sqlalchemy import select, update

from plumbing.envelope import Event

from . import operations
from .rest import now
from .tables import backups, instances

RUNNING = ("NEW", "BUILDING", "SAVING")
ENDED = ("COMPLETED", "FAILED")


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
