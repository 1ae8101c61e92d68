"""What the API keeps from the agents' heartbeats on coffer.telemetry: each instance's
volume use (Trove's `volume.used`), and when its agent was last heard from with its
engine's process figures (the mgmt diagnostics and rpc_ping, mgmt_guest.py).
A heartbeat is a fact that only the newest one matters of, so no inbox: a
redelivery writes the same values. Written only when the volume use moved by
MIN_CHANGE_BYTES, FIGURES_EVERY_SECONDS passed or the engine went up or down or changed
role, so a second's heartbeat of every instance costs no write."""
from __future__ import annotations

import json

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert

from plumbing.envelope import Event

from .tables import guest_heartbeats, instances

MIN_CHANGE_BYTES = 1024 ** 2
FIGURES_EVERY_SECONDS = 10
TYPE = "coffer.telemetry.heartbeat.v1"
FIGURES = ("rss_bytes", "cpu_seconds", "cpu_percent", "connections", "engine_up", "role")


class AgentTelemetry:
    def __init__(self, store):
        self.store = store
        self.written: dict[str, int] = {}  # instance id -> the use last written by this process
        self.heard: dict[str, float] = {}  # instance id -> sent_at (s) of the heartbeat last written
        self.states: dict[str, tuple] = {}  # instance id -> (engine up, role) last written: a change is written at once

    async def handle(self, event: Event) -> None:
        await self.handle_batch([event])

    async def handle_batch(self, events: list[Event]) -> None:
        latest = {e.data["instance_id"]: e.data for e in events if e.type == TYPE}
        uses: dict[str, int] = {}
        beats: dict[str, dict] = {}
        for iid, beat in latest.items():
            used = beat.get("disk_used_bytes", 0)
            if abs(used - self.written.get(iid, -MIN_CHANGE_BYTES)) >= MIN_CHANGE_BYTES:
                uses[iid] = used
            state = (beat.get("engine_up"), beat.get("role"))
            if (beat["sent_at"].timestamp() - self.heard.get(iid, 0) >= FIGURES_EVERY_SECONDS
                    or state != self.states.get(iid)):
                beats[iid] = {"instance_id": iid, "heartbeat_at": beat["sent_at"],
                              "figures": json.dumps({k: beat[k] for k in FIGURES if k in beat})}
        if not uses and not beats:
            return
        async with self.store.uow() as uow:
            for iid, used in uses.items():
                await uow.conn.execute(update(instances).where(instances.c.id == iid).values(volume_used_bytes=used))
            if beats:
                upsert = insert(guest_heartbeats).values(list(beats.values()))
                await uow.conn.execute(upsert.on_conflict_do_update(
                    index_elements=[guest_heartbeats.c.instance_id],
                    set_={"heartbeat_at": upsert.excluded.heartbeat_at, "figures": upsert.excluded.figures}))
        self.written.update(uses)
        self.heard.update({iid: b["heartbeat_at"].timestamp() for iid, b in beats.items()})
        self.states.update({iid: (latest[iid].get("engine_up"), latest[iid].get("role")) for iid in beats})
