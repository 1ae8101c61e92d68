"""Day-2 actions on instances, the API's side. A request starts an operation: the
checks, the instance's new status and the request to the provisioner commit in one
transaction. The provisioner's outcome event (action_completed / action_failed)
finishes it; what each action changes in the API's views on success is registered
with `on_completed` (and what a failure undoes, with `on_failed`) by the route module
that owns those views."""
from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from sqlalchemy import and_, select, update

from plumbing import sealing
from plumbing import topics as T
from plumbing.envelope import Event

from .faults import Fault, bad_request
from .rest import now
from .tables import instances, operations

SOURCE = "api"
RUNNING = ("ACTIVE", "RESTART_REQUIRED")  # the database runs: guest actions are possible
WAIT_POLL_SECONDS = 0.02
# The provisioner answers every action within its deadlines; this is the net under
# it (a request dead-lettered on its way, a provisioner down for long): an operation
# with no outcome after this long fails, so no instance stays REBOOT or RESIZE forever.
OUTCOME_TIMEOUT_SECONDS = float(os.environ.get("COFFER_API_OPERATION_TIMEOUT_SECONDS", "900"))

# action -> what its success changes in the API's views: fn(uow, operation row, output dict)
CompletionEffect = Callable[[object, object, dict], Awaitable[None]]
_effects: dict[str, CompletionEffect] = {}
# action -> what its failure undoes in the API's views: fn(uow, operation row)
FailureEffect = Callable[[object, object], Awaitable[None]]
_failure_effects: dict[str, FailureEffect] = {}


def on_completed(action: str):
    def register(fn: CompletionEffect) -> CompletionEffect:
        _effects[action] = fn
        return fn
    return register


def on_failed(action: str):
    def register(fn: FailureEffect) -> FailureEffect:
        _failure_effects[action] = fn
        return fn
    return register


def busy(instance) -> Fault:
    if instance.status == "SHUTDOWN" and not instance.task:
        return Fault(422, f"Instance {instance.id} is stopped (SHUTDOWN): start it first "
                          "(POST /instances/{id}/action {\"start\": {}}).")
    # an action that keeps the status (a configuration change, a stop) is named: "status was
    # ACTIVE" alone reads as if nothing were running
    doing = f", task {instance.task} running" if instance.task else ""
    return Fault(422, f"Instance {instance.id} is not currently available for an action to be performed "
                      f"(status was {instance.status}{doing}).")


def seal_for(instance, secrets: dict) -> str:
    """Secrets sealed to the instance's agent, which alone can open them."""
    if not instance.agent_public_key:
        raise Fault(422, f"Instance {instance.id} has no running agent yet; try again in a moment.")
    return sealing.seal(instance.agent_public_key, secrets)


async def start(uow, instance, action: str, arguments: dict, *, busy_status: str | None = None,
                exclusive: bool = True, sealed: str | None = None, allowed: tuple[str, ...] = RUNNING) -> str:
    """Start `action` on `instance` (a row read in this unit of work): 422 while the
    instance is busy or not in an `allowed` status. An exclusive action owns the
    instance until it ends (a second one gets 422); `busy_status` is the status
    shown meanwhile (Trove's REBOOT, RESIZE, ...)."""
    if instance.task or instance.status not in allowed:
        raise busy(instance)
    operation_id = str(uuid.uuid4())
    await uow.conn.execute(operations.insert().values(
        id=operation_id, instance_id=instance.id, project_id=instance.project_id, action=action,
        arguments=json.dumps(arguments), exclusive=exclusive, state="running", status_before=instance.status,
        message="", output="{}", created_at=now()))
    changes = {"updated_at": now()}
    if exclusive:
        changes["task"] = action
    if busy_status:
        changes["status"] = busy_status
    # the status guard makes two concurrent requests for one instance race safely
    result = await uow.conn.execute(update(instances).where(
        instances.c.id == instance.id, instances.c.task.is_(None),
        instances.c.status == instance.status).values(**changes))
    if result.rowcount != 1:
        raise busy(instance)
    await uow.emit(T.INSTANCE_REQUESTS, Event(
        "coffer.instance.action_requested.v1", instance.id, source=SOURCE, project=instance.project_id,
        data={"instance_id": instance.id, "project_id": instance.project_id, "operation_id": operation_id,
              "action": action, "arguments": json.dumps(arguments), "sealed": sealed}))
    return operation_id


async def finish(uow, event: Event) -> None:
    """Project an action_completed / action_failed event."""
    d = event.data
    op = (await uow.conn.execute(select(operations).where(operations.c.id == d["operation_id"]))).first()
    if op is None or op.state != "running":
        return
    succeeded = event.type == "coffer.instance.action_completed.v1"
    output = json.loads(d.get("output") or "{}") if succeeded else {}
    await uow.conn.execute(update(operations).where(operations.c.id == op.id).values(
        state="done" if succeeded else "failed", message="" if succeeded else d["message"],
        output=json.dumps(output), finished_at=now()))
    inst = (await uow.conn.execute(select(instances).where(instances.c.id == op.instance_id))).first()
    if inst is None or inst.task == "delete":
        return  # deleted meanwhile: the delete wins
    # the instance's status is the running exclusive action's while one runs: a side
    # action ending meanwhile (a database made during a restart) leaves it alone
    owns_status = inst.task == op.action if op.exclusive else inst.task is None
    if owns_status:
        await uow.conn.execute(update(instances).where(instances.c.id == inst.id).values(
            **status_changes(op, inst, event, succeeded)))
    if succeeded and op.action in _effects:
        await _effects[op.action](uow, op, output)
    elif not succeeded and op.action in _failure_effects:
        await _failure_effects[op.action](uow, op)


def status_changes(op, inst, event: Event, succeeded: bool) -> dict:
    d = event.data
    # "" = the action changed nothing about the engine: the status it had before it, or,
    # for a side action (databases, users, ...) that never owned the status, the current one
    status = d["status"] or (op.status_before if op.exclusive else inst.status)
    changes = {"status": status, "task": None, "updated_at": now()}
    if succeeded:
        changes.update(fault_message=None, fault_details=None, fault_at=None)
    else:
        changes.update(fault_message=d["message"], fault_details=d.get("details", ""), fault_at=now())
    if succeeded and status in RUNNING:
        # the agent's report is the freshest word on the engine: it runs and answered
        changes.update(operating_status="HEALTHY", health_at=event_time(event))
    elif status != inst.status:
        changes["health_at"] = None  # the next health report applies, whatever its age
    return changes


def event_time(event: Event):
    try:
        return datetime.fromisoformat(event.time)
    except ValueError:
        return now()


async def wait(store, operation_id: str, timeout: float):
    """The operation once it has ended, or None after `timeout` seconds. Polls the
    database: the outcome may be projected by another API process."""
    deadline = time.monotonic() + timeout
    while True:
        async with store.engine.connect() as conn:
            op = (await conn.execute(select(operations).where(operations.c.id == operation_id))).first()
        if op is not None and op.state != "running":
            return op
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(WAIT_POLL_SECONDS)


async def outcome(store, operation_id: str, what: str, timeout: float) -> dict:
    """The output of an operation a request answers with once it succeeded; Trove's
    400 for a guest error or when the agent does not answer within `timeout` seconds."""
    done = await wait(store, operation_id, timeout)
    if done is None:
        raise bad_request(f"{what} did not complete within {timeout:.0f} s: the instance's agent did not answer. "
                          "Try again.")
    if done.state != "done":
        raise bad_request(f"{what} failed: {done.message}")
    return json.loads(done.output or "{}")


async def expire_unanswered(store, timeout: float = OUTCOME_TIMEOUT_SECONDS) -> int:
    """Fail the operations that got no outcome within `timeout` seconds: an exclusive
    one leaves the instance in ERROR (its engine's state is unknown), any other the
    status the instance had."""
    cutoff = now() - timedelta(seconds=timeout)
    async with store.uow() as uow:
        stale = (await uow.conn.execute(select(operations).where(
            operations.c.state == "running", operations.c.created_at < cutoff))).all()
        for op in stale:
            message = (f"{op.action} got no outcome within {timeout:.0f} s; the instance's state is unknown: "
                       "restart it, or ask an administrator.")
            await uow.conn.execute(update(operations).where(operations.c.id == op.id).values(
                state="failed", message=message, finished_at=now()))
            await uow.conn.execute(update(instances).where(and_(
                instances.c.id == op.instance_id, instances.c.task.is_distinct_from("delete"))).values(
                status="ERROR" if op.exclusive else op.status_before,
                task=None if op.exclusive else instances.c.task,
                fault_message=message, fault_details="", fault_at=now(), updated_at=now()))
    return len(stale)
