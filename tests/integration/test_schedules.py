"""Schedule firing in-process (an API on SQLite, no bus): a due schedule starts the
same operation a request would, once however many API processes fire it; a firing
that finds the instance busy or already there is skipped with the reason kept and
nothing started; a schedule outlives nothing: its instance gone, it goes too."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from services.api import schedules
from services.api.rest import now
from services.api.tables import instance_schedules, instances, operations

PROJECT = "sched-project"


async def add_instance(store, instance_id: str, status: str = "ACTIVE") -> None:
    async with store.uow() as uow:
        await uow.conn.execute(instances.insert().values(
            id=instance_id, project_id=PROJECT, name=instance_id, status=status, operating_status="HEALTHY",
            flavor_id="d1", volume_gb=1, datastore="postgresql", datastore_version="15",
            datastore_version_number="15.0", created_at=now(), updated_at=now()))


async def add_schedule(api, token: str, instance_id: str, action: str) -> dict:
    async with api.session.post(f"/v1.0/{PROJECT}/instances/{instance_id}/schedules",
                                json={"schedule": {"action": action, "cron": "0 0 1 1 *"}},
                                headers={"X-Auth-Token": token}) as answer:
        assert answer.status == 200, await answer.text()
        schedule = (await answer.json())["schedule"]
    async with api.store.uow() as uow:  # due now
        await uow.conn.execute(update(instance_schedules).where(instance_schedules.c.id == schedule["id"]).values(
            next_run_at=now() - timedelta(seconds=1)))
    return schedule


async def one(store, query):
    async with store.engine.connect() as conn:
        return (await conn.execute(query)).first()


def test_a_due_schedule_fires_once_and_a_busy_instance_skips_it(inprocess_api):
    async def run():
        async with inprocess_api() as api:
            token = await api.token(PROJECT)
            await add_instance(api.store, "i-1")
            stopper = await add_schedule(api, token, "i-1", "stop")
            due = await one(api.store, select(instance_schedules).where(instance_schedules.c.id == stopper["id"]))
            # two API processes find it due at once: one fires, the other finds it claimed and does nothing
            # (were it to fire too, the busy instance would make it write a skip over "started")
            await asyncio.gather(schedules.fire(api.store, due), schedules.fire(api.store, due))
            count = await one(api.store, select(func.count()).select_from(operations))
            assert count[0] == 1
            inst = await one(api.store, select(instances).where(instances.c.id == "i-1"))
            assert inst.task == "stop"
            fired = await one(api.store, select(instance_schedules).where(instance_schedules.c.id == stopper["id"]))
            assert fired.last_result == "started" and fired.next_run_at > now()

            # due again while the stop runs: skipped, nothing started, the instance as it was
            async with api.store.uow() as uow:
                await uow.conn.execute(update(instance_schedules).values(next_run_at=now() - timedelta(seconds=1)))
            assert await schedules.fire_due(api.store) == 1
            skipped = await one(api.store, select(instance_schedules).where(instance_schedules.c.id == stopper["id"]))
            assert skipped.last_result.startswith("skipped:") and "not currently available" in skipped.last_result
            assert (await one(api.store, select(func.count()).select_from(operations)))[0] == 1
            assert (await one(api.store, select(instances.c.task).where(instances.c.id == "i-1")))[0] == "stop"
    asyncio.run(run())


def test_a_start_of_a_running_instance_is_skipped_and_a_gone_instance_takes_its_schedules(inprocess_api):
    async def run():
        async with inprocess_api() as api:
            token = await api.token(PROJECT)
            await add_instance(api.store, "i-2")
            await add_schedule(api, token, "i-2", "start")
            await schedules.fire_due(api.store)
            row = await one(api.store, select(instance_schedules))
            assert "not stopped" in row.last_result
            async with api.store.uow() as uow:
                await uow.conn.execute(instances.delete())
                await uow.conn.execute(update(instance_schedules).values(next_run_at=now() - timedelta(seconds=1)))
            await schedules.fire_due(api.store)
            assert await one(api.store, select(instance_schedules)) is None
    asyncio.run(run())
