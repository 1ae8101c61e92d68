"""The API's view of backups (services/api/backups_view.py) on its own tables: how
the backup service's events move a backup and give its instance its status back, and
the net under the backup service's deadline."""
from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from plumbing.envelope import Event
from services.api import backups_view
from services.api.rest import now
from services.api.tables import backups, instances


async def backing_up(store, age: timedelta) -> tuple[str, str]:
    """An ACTIVE instance whose backup (NEW) was asked for `age` ago."""
    instance_id, backup_id, at = str(uuid.uuid4()), str(uuid.uuid4()), now() - age
    async with store.engine.begin() as conn:
        await conn.execute(instances.insert().values(
            id=instance_id, project_id="p", name="i", status="BACKUP", operating_status="HEALTHY", task="backup",
            flavor_id="d1", volume_gb=1, datastore="redis", datastore_version="7.0", datastore_version_number="7.0",
            created_at=at, updated_at=at))
        await conn.execute(backups.insert().values(
            id=backup_id, project_id="p", instance_id=instance_id, name="b", description="", parent_id=None,
            datastore="redis", datastore_version="7.0", status="NEW", message="", size_bytes=0, checksum="",
            location="", instance_status_before="ACTIVE", created_at=at, updated_at=at))
    return instance_id, backup_id


async def read(store, instance_id: str, backup_id: str):
    async with store.engine.connect() as conn:
        inst = (await conn.execute(select(instances).where(instances.c.id == instance_id))).one()
        backup = (await conn.execute(select(backups).where(backups.c.id == backup_id))).first()
    return inst, backup


def changed(backup_id: str, instance_id: str, status: str, **extra) -> Event:
    return Event("coffer.backup.status_changed.v1", backup_id, {
        "backup_id": backup_id, "project_id": "p", "instance_id": instance_id, "name": "b", "description": "",
        "parent_id": None, "incremental": False, "datastore": "redis", "datastore_version": "7.0",
        "status": status, "size_bytes": 0, "checksum": "", "location": "", "message": "", **extra})


async def test_events_move_the_backup_and_free_the_instance_once_it_ends(api_store):
    instance_id, backup_id = await backing_up(api_store, timedelta(0))
    for event in (changed(backup_id, instance_id, "BUILDING"),
                  changed(backup_id, instance_id, "COMPLETED", size_bytes=1234, checksum="ab" * 32,
                          location="local://c/o")):
        async with api_store.uow() as uow:
            await backups_view.project(uow, event)
        inst, backup = await read(api_store, instance_id, backup_id)
        if event.data["status"] == "BUILDING":
            assert (inst.status, inst.task, backup.status) == ("BACKUP", "backup", "BUILDING")
    assert (inst.status, inst.task) == ("ACTIVE", None)
    assert (backup.status, backup.size_bytes, backup.location) == ("COMPLETED", 1234, "local://c/o")
    async with api_store.uow() as uow:  # a late BUILDING changes nothing
        await backups_view.project(uow, changed(backup_id, instance_id, "BUILDING"))
    assert (await read(api_store, instance_id, backup_id))[1].status == "COMPLETED"
    async with api_store.uow() as uow:
        await backups_view.project(uow, changed(backup_id, instance_id, "DELETED"))
    assert (await read(api_store, instance_id, backup_id))[1] is None


async def test_a_backup_never_reported_on_fails_and_gives_the_instance_back(api_store):
    stale = await backing_up(api_store, timedelta(hours=1))
    fresh = await backing_up(api_store, timedelta(seconds=5))
    assert await backups_view.expire_unanswered(api_store, timeout=600) >= 1
    inst, backup = await read(api_store, *stale)
    assert (inst.status, inst.task, backup.status) == ("ACTIVE", None, "FAILED")
    assert "did not report" in backup.message
    inst, backup = await read(api_store, *fresh)
    assert (inst.status, inst.task, backup.status) == ("BACKUP", "backup", "NEW")
