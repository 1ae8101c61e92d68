"""Each instance's volume use (Trove's `volume.used`), kept from its agent's
heartbeats on coffer.telemetry. A heartbeat is a fact that only the newest one
matters of, so no inbox: a redelivery writes the same value. Written only when it
moved by MIN_CHANGE_BYTES, so a second's heartbeat of every instance costs no write."""
from __future__ import annotations

from sqlalchemy import update

from plumbing.envelope import Event

from .tables import instances

MIN_CHANGE_BYTES = 1024 ** 2
TYPE = "coffer.telemetry.heartbeat.v1"


class VolumeUse:
    def __init__(self, store):
        self.store = store
        self.written: dict[str, int] = {}  # instance id -> the use last written by this process

    async def handle(self, event: Event) -> None:
        await self.handle_batch([event])

    async def handle_batch(self, events: list[Event]) -> None:
        latest = {e.data["instance_id"]: e.data.get("disk_used_bytes", 0) for e in events if e.type == TYPE}
        changed = {iid: used for iid, used in latest.items()
                   if abs(used - self.written.get(iid, -MIN_CHANGE_BYTES)) >= MIN_CHANGE_BYTES}
        if not changed:
            return
        async with self.store.uow() as uow:
            for iid, used in changed.items():
                await uow.conn.execute(update(instances).where(instances.c.id == iid).values(
                    volume_used_bytes=used))
        self.written.update(changed)
