"""What the API keeps from the agents' heartbeats on coffer.telemetry: each instance's
volume use (Trove's `volume.used`), and when its agent was last heard from with its
engine's process figures (the mgmt diagnostics and rpc_ping, mgmt_guest.py).
A heartbeat is a fact that only the newest one matters of, so no inbox: a
redelivery writes the same values. Written only when the volume use moved by
MIN_CHANGE_BYTES or FIGURES_EVERY_SECONDS passed, so a second's heartbeat of every
instance costs no write."""
from __future__ import annotations

import json

from sqlalchemy import update

from plumbing.envelope import Event

from .tables import instances

MIN_CHANGE_BYTES = 1024 ** 2
FIGURES_EVERY_SECONDS = 10
TYPE = "coffer.telemetry.heartbeat.v1"
FIGURES = ("rss_bytes", "cpu_seconds", "cpu_percent", "connections", "engine_up", "role")


class AgentTelemetry:
    def __init__(self, store):
        self.store = store
        self.written: dict[str, int] = {}  # instance id -> the use last written by this process
        self.heard: dict[str, float] = {}  # instance id -> sent_at (s) of the heartbeat last written

    async def handle(self, event: Event) -> None:
        await self.handle_batch([event])

    async def handle_batch(self, events: list[Event]) -> None:
        latest = {e.data["instance_id"]: e.data for e in events if e.type == TYPE}
        changes: dict[str, dict] = {}
        for iid, beat in latest.items():
            used = beat.get("disk_used_bytes", 0)
            if abs(used - self.written.get(iid, -MIN_CHANGE_BYTES)) >= MIN_CHANGE_BYTES:
                changes.setdefault(iid, {})["volume_used_bytes"] = used
            sent_at = beat["sent_at"]
            if sent_at.timestamp() - self.heard.get(iid, 0) >= FIGURES_EVERY_SECONDS:
                changes.setdefault(iid, {}).update(heartbeat_at=sent_at, guest_figures=json.dumps(
                    {k: beat[k] for k in FIGURES if k in beat}))
        if not changes:
            return
        async with self.store.uow() as uow:
            for iid, values in changes.items():
                await uow.conn.execute(update(instances).where(instances.c.id == iid).values(**values))
        for iid, values in changes.items():
            if "volume_used_bytes" in values:
                self.written[iid] = values["volume_used_bytes"]
            if "heartbeat_at" in values:
                self.heard[iid] = values["heartbeat_at"].timestamp()
