"""The backup service's schedules (services/backup/schedules.py) on its own tables: a
request sets or removes a schedule and says so; a due schedule fires once however
many backup service processes find it due; retention picks whole chains; a deleted
instance takes its schedule along. (End to end, with real backups: tests/e2e/test_backups.py.)"""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from plumbing.codec import registry
from plumbing.db import create_schema, make_engine
from plumbing.envelope import Event, utcnow
from plumbing.outbox import Store
from services.backup import schedules
from services.backup.tables import backups, metadata
from services.backup.tables import schedules as schedule_rows

INSTANCE, PROJECT = "sched-instance", "sched-project"


@pytest.fixture
async def backup_store(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'backup.db'}")
    await create_schema(engine, metadata)
    yield Store(engine, metadata, source="backup")
    await engine.dispose()


async def emitted(store: Store, event_type: str) -> list[dict]:
    """What the service said, of one type, oldest first."""
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(store.outbox).order_by(store.outbox.c.id))).all()
    found = []
    for row in rows:
        headers = dict(json.loads(row.headers))
        if headers["ce_type"] == event_type:
            found.append(registry().decode(event_type, row.value))
    return found


def asked(full: str | None, **policy) -> Event:
    return Event("coffer.backup.schedule_requested.v1", INSTANCE, {
        "instance_id": INSTANCE, "project_id": PROJECT, "full": full, "incremental": policy.get("incremental"),
        "keep_last_chains": policy.get("keep_last_chains"), "keep_days": policy.get("keep_days")},
        source="api", project=PROJECT)


async def test_a_schedule_is_set_announced_fired_once_and_removed(backup_store):
    async with backup_store.uow() as uow:
        await schedules.requested(uow, asked("0 3 * * *", incremental="0 * * * *", keep_last_chains=2))
    [changed] = await emitted(backup_store, "coffer.backup.schedule_changed.v1")
    assert (changed["full"], changed["incremental"], changed["keep_last_chains"]) == ("0 3 * * *", "0 * * * *", 2)
    assert changed["next_full_at"] and changed["next_incremental_at"]

    async with backup_store.uow() as uow:  # the incremental is due now
        await uow.conn.execute(update(schedule_rows).values(next_incremental_at=utcnow() - timedelta(seconds=1)))
    async with backup_store.engine.connect() as conn:
        due = (await conn.execute(select(schedule_rows))).one()
    # two processes find it due at once: one claims the firing
    claimed = await asyncio.gather(*(schedules.fire(backup_store, due, utcnow()) for _ in range(2)))
    assert sorted(claimed) == [0, 1]
    [fired] = await emitted(backup_store, "coffer.backup.schedule_fired.v1")
    assert (fired["instance_id"], fired["kind"]) == (INSTANCE, "incremental")
    assert await schedules.fire_due(backup_store) == 0  # its next firing is in the future

    async with backup_store.uow() as uow:
        await schedules.requested(uow, asked(None))
    assert (await emitted(backup_store, "coffer.backup.schedule_changed.v1"))[-1]["full"] is None
    async with backup_store.engine.connect() as conn:
        assert (await conn.execute(select(schedule_rows))).first() is None


async def test_retention_lets_go_of_whole_old_chains_and_a_deleted_instance_takes_its_schedule(backup_store):
    async with backup_store.uow() as uow:
        await schedules.requested(uow, asked("0 3 * * *", keep_last_chains=1))
        old = utcnow() - timedelta(days=3)
        for backup_id, parent, age in (("full-1", None, 3), ("inc-1", "full-1", 2), ("full-2", None, 1)):
            await uow.conn.execute(backups.insert().values(
                id=backup_id, project_id=PROJECT, instance_id=INSTANCE, name=backup_id, description="",
                parent_id=parent, datastore="postgresql", datastore_version="16", status="COMPLETED",
                container="c", object=backup_id, wrapped_key="k", created_at=old + timedelta(days=3 - age)))
        assert await schedules.expired_chains(uow, INSTANCE) == ["full-1"]  # with its incremental
        assert await schedules.expired_chains(uow, "another-instance") == []  # no schedule, no retention

    async with backup_store.uow() as uow:
        await schedules.forget(uow, Event("coffer.instance.deleted.v1", INSTANCE, {"instance_id": INSTANCE},
                                          source="provisioner", project=PROJECT), INSTANCE)
    assert (await emitted(backup_store, "coffer.backup.schedule_changed.v1"))[-1]["full"] is None
    async with backup_store.uow() as uow:
        assert await schedules.expired_chains(uow, INSTANCE) == []
