"""Stop and start (beyond Trove: the seed's dev instances switched off at night):
POST /instances/{id}/action {"stop": {}} / {"start": {}}. A stopped instance shows
SHUTDOWN (status and operating status), keeps its host's capacity and its data;
its agent keeps running and says the engine is down on purpose. Other actions on a
stopped instance are refused until it is started."""
from __future__ import annotations

from sqlalchemy import update

from . import operations
from .faults import Fault, bad_request
from .rest import now
from .tables import instances

STOPPED = "SHUTDOWN"


class Power:
    PATHS: dict = {}  # actions of POST /instances/{id}/action, described there

    def __init__(self, store):
        self.store = store

    def instance_actions(self) -> dict:
        return {"stop": self.stop, "start": self.start}

    async def stop(self, request, uow, inst, value) -> None:
        no_arguments("stop", value)
        await stop(uow, inst)

    async def start(self, request, uow, inst, value) -> None:
        no_arguments("start", value)
        await start(uow, inst)

    def routes(self, app, prefix: str) -> None:
        """No routes of its own."""


def no_arguments(action: str, value) -> None:
    if value not in ({}, None):
        raise bad_request(f"Validation error: {action} takes no arguments.")


async def stop(uow, inst) -> str:
    """Start a stop (the API's action and a schedule's firing alike); 422 when busy
    or stopped already."""
    if inst.status == STOPPED and not inst.task:
        raise Fault(422, f"Instance {inst.id} is already stopped.")
    return await operations.start(uow, inst, "stop", {}, allowed=operations.RUNNING + ("ERROR",))


async def start(uow, inst) -> str:
    if inst.status != STOPPED or inst.task:
        raise Fault(422, f"Instance {inst.id} is not stopped (status {inst.status}): only a stopped "
                         "instance can be started.")
    return await operations.start(uow, inst, "start", {}, busy_status="REBOOT", allowed=(STOPPED,))


@operations.on_completed("stop")
async def _stopped(uow, op, output: dict) -> None:
    await uow.conn.execute(update(instances).where(
        instances.c.id == op.instance_id, instances.c.status == STOPPED).values(
        operating_status=STOPPED, health_at=None, updated_at=now()))
