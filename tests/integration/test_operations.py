"""The API's side of day-2 operations on its own tables, on the real PostgreSQL (the
services' database server): how outcomes change an instance's status, and the net
under the provisioner's deadlines (an operation that never gets an outcome fails
instead of leaving its instance REBOOT forever)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from plumbing.envelope import Event
from services.api import operations
from services.api.rest import now
from services.api.tables import instances, operations as operations_table


async def add(store, instance_id: str, status: str, task, action: str, exclusive: bool, age: timedelta,
              status_before: str = "ACTIVE", arguments: str = "{}"):
    created = now() - age
    async with store.engine.begin() as conn:
        await conn.execute(instances.insert().values(
            id=instance_id, project_id="p", name=instance_id, status=status, operating_status="HEALTHY",
            task=task, flavor_id="d1", volume_gb=1, datastore="postgresql", datastore_version="15",
            datastore_version_number="15.1", created_at=created, updated_at=created))
        await conn.execute(operations_table.insert().values(
            id=f"op-{instance_id}", instance_id=instance_id, project_id="p", action=action, arguments=arguments,
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


def outcome(instance_id: str, action: str, status: str, failed: bool = False) -> Event:
    data = {"instance_id": instance_id, "operation_id": f"op-{instance_id}", "action": action, "status": status}
    if failed:
        return Event("coffer.instance.action_failed.v1", instance_id, {**data, "message": "it broke",
                                                                         "details": ""})
    return Event("coffer.instance.action_completed.v1", instance_id, {**data, "output": '{"n": 1}'})


async def finish(store, event: Event) -> None:
    async with store.uow() as uow:
        await operations.finish(uow, event)


async def test_an_exclusive_action_ends_with_the_status_its_agent_reported(api_store):
    await add(api_store, "i1", "REBOOT", "restart", "restart", True, timedelta(seconds=1))
    await finish(api_store, outcome("i1", "restart", "RESTART_REQUIRED"))
    inst, op = await state(api_store, "i1")
    assert (inst.status, inst.task, inst.operating_status, op.state, op.output) == (
        "RESTART_REQUIRED", None, "HEALTHY", "done", '{"n": 1}')


async def test_a_harmless_failure_restores_the_status_and_shows_the_fault(api_store):
    await add(api_store, "i2", "RESIZE", "resize", "resize", True, timedelta(seconds=1))
    await finish(api_store, outcome("i2", "resize", "", failed=True))
    inst, op = await state(api_store, "i2")
    assert (inst.status, inst.task, inst.fault_message, op.state, op.message) == (
        "ACTIVE", None, "it broke", "failed", "it broke")


async def test_a_guest_action_ending_during_a_restart_leaves_the_reboot_alone(api_store):
    await add(api_store, "i3", "REBOOT", "restart", "create_databases", False, timedelta(seconds=1),
              arguments='{"databases": [{"name": "appdb"}]}')
    await finish(api_store, outcome("i3", "create_databases", "ACTIVE"))
    inst, op = await state(api_store, "i3")
    assert (inst.status, inst.task, op.state) == ("REBOOT", "restart", "done")


async def test_what_a_completed_action_changes_in_the_views_runs_once(api_store, monkeypatch):
    seen = []

    async def effect(uow, op, output):
        seen.append((op.id, output))
    monkeypatch.setitem(operations._effects, "create_databases", effect)
    await add(api_store, "i4", "ACTIVE", None, "create_databases", False, timedelta(seconds=1))
    await finish(api_store, outcome("i4", "create_databases", "ACTIVE"))
    await finish(api_store, outcome("i4", "create_databases", "ACTIVE"))  # a redelivered outcome
    assert seen == [("op-i4", {"n": 1})]
