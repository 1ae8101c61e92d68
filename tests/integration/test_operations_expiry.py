"""The API's net under the provisioner's deadlines: an operation that never gets an
outcome fails after a while instead of leaving its instance REBOOT forever. Runs on
the real PostgreSQL (the services' database server), with the API's own tables."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from plumbing.db import create_schema, make_engine
from plumbing.outbox import Store
from services.api import operations
from services.api.rest import now
from services.api.tables import instances, metadata, operations as operations_table


@pytest.fixture
async def api_store(service_databases, tmp_path):
    url = (service_databases.format(service="plumbing") if service_databases
           else f"sqlite+aiosqlite:///{tmp_path / 'api.db'}")
    engine = make_engine(url)
    await create_schema(engine, metadata)
    async with engine.begin() as conn:
        await conn.execute(operations_table.delete())
        await conn.execute(instances.delete())
    yield Store(engine, metadata, source="api")
    await engine.dispose()


async def add(store, instance_id: str, status: str, task, action: str, exclusive: bool, age: timedelta,
              status_before: str = "ACTIVE"):
    created = now() - age
    async with store.engine.begin() as conn:
        await conn.execute(instances.insert().values(
            id=instance_id, project_id="p", name=instance_id, status=status, operating_status="HEALTHY",
            task=task, flavor_id="d1", volume_gb=1, datastore="postgresql", datastore_version="15",
            datastore_version_number="15.1", created_at=created, updated_at=created))
        await conn.execute(operations_table.insert().values(
            id=f"op-{instance_id}", instance_id=instance_id, project_id="p", action=action, arguments="{}",
            exclusive=exclusive, state="running", status_before=status_before, message="", output="{}",
            created_at=created))


async def state(store, instance_id: str):
    async with store.engine.connect() as conn:
        inst = (await conn.execute(select(instances).where(instances.c.id == instance_id))).one()
        op = (await conn.execute(select(operations_table).where(
            operations_table.c.instance_id == instance_id))).one()
    return inst, op


async def test_unanswered_operations_fail_and_free_their_instances(api_store):
    await add(api_store, "rebooting", "REBOOT", "restart", "restart", True, timedelta(hours=1))
    await add(api_store, "adding-db", "RESTART_REQUIRED", None, "create_databases", False, timedelta(hours=1),
              status_before="RESTART_REQUIRED")
    await add(api_store, "fresh", "REBOOT", "restart", "restart", True, timedelta(seconds=5))

    assert await operations.expire_unanswered(api_store, timeout=600) == 2

    inst, op = await state(api_store, "rebooting")
    assert (inst.status, inst.task, op.state) == ("ERROR", None, "failed")
    assert "no outcome" in inst.fault_message and inst.fault_message == op.message
    inst, op = await state(api_store, "adding-db")
    assert (inst.status, op.state) == ("RESTART_REQUIRED", "failed")  # a guest action changed nothing
    inst, op = await state(api_store, "fresh")
    assert (inst.status, inst.task, op.state) == ("REBOOT", "restart", "running")
    assert await operations.expire_unanswered(api_store, timeout=600) == 0


async def test_a_delete_under_way_is_left_alone(api_store):
    await add(api_store, "deleting", "SHUTDOWN", "delete", "restart", True, timedelta(hours=1))
    await operations.expire_unanswered(api_store, timeout=600)
    inst, op = await state(api_store, "deleting")
    assert (inst.status, inst.task, op.state) == ("SHUTDOWN", "delete", "failed")
