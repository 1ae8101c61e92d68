"""The monitor: keeps each instance's last heartbeat and its place in a replica set
in a faust table (recovered from its changelog; partitioned by instance id, so
workers share the instances), announces health changes and alerts on
coffer.health.events, and asks for the failover of a primary with replicas that
stays unhealthy longer than the failover delay."""
from __future__ import annotations

import asyncio
import os
import time
from contextlib import contextmanager

import faust

from plumbing import metrics, tracing
from plumbing import topics as T
from plumbing.bus import DecodeError, decode_record
from plumbing.codec import registry
from plumbing.config import KafkaSettings, coffer_home
from plumbing.envelope import Event, header

from . import health

SILENCE_SECONDS = float(os.environ.get("COFFER_MONITOR_SILENCE_SECONDS", "5"))
FAILOVER_DELAY_SECONDS = float(os.environ.get("COFFER_FAILOVER_DELAY_SECONDS", "1.5"))
TICK_SECONDS = float(os.environ.get("COFFER_MONITOR_TICK_SECONDS", "0.2"))
LAG_ALERT_SECONDS = float(os.environ.get("COFFER_MONITOR_LAG_ALERT_SECONDS", "30"))
DISK_ALERT_SHARE = float(os.environ.get("COFFER_MONITOR_DISK_ALERT_PERCENT", "90")) / 100
kafka = KafkaSettings()

app = faust.App(
    os.environ.get("COFFER_MONITOR_APP_ID", "coffer-monitor") + kafka.group_suffix,
    broker=f"kafka://{kafka.bootstrap}",
    store="memory://",
    datadir=str(coffer_home() / "monitor"),
    web_enabled=False,
    topic_partitions=kafka.partitions,
    topic_replication_factor=kafka.replication_factor,
    broker_session_timeout=kafka.session_timeout_ms / 1000,
    broker_heartbeat_interval=kafka.heartbeat_interval_ms / 1000,
    producer_max_batch_size=1,  # exact table recovery on the embedded broker (broker.md)
    consumer_auto_offset_reset="earliest",
)

telemetry = app.topic(T.TELEMETRY, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw")
instance_events = app.topic(T.INSTANCE_EVENTS, key_type=bytes, value_type=bytes, value_serializer="raw",
                            key_serializer="raw")
health_topic = app.topic(T.HEALTH_EVENTS, key_type=bytes, value_type=bytes, value_serializer="raw",
                         key_serializer="raw")

# instance id -> {"last_seen": ms, "status": HEALTHY|UNHEALTHY, "project": str, "seq": int,
#   "unhealthy_since": ms|None, and from the provisioner's topology events: "role", "replicas" (count),
#   "failover_enabled", "epoch"}
instances = app.Table("instance-health", default=None, partitions=kafka.partitions)
announced_silent: set[str] = set()
# this worker's memory of what it asked or alerted (a timer cannot write the table); a
# worker taking over may ask once more: the provisioner acts once per epoch
failover_asked: dict[str, int] = {}
alerted: set[tuple[str, str]] = set()


@app.on_worker_init.connect
def _observability(sender=None, **_kwargs) -> None:
    """Tracing and metrics for the worker process (not for a mere import of this module)."""
    tracing.setup("monitor")
    metrics.setup("monitor")


@contextmanager
def _handling(event: Event, event_):
    """A consumer span and the consumer metrics around handling one event."""
    group = app.conf.id
    message = event_.message
    started = time.perf_counter()
    outcome = "error"
    try:
        with tracing.consuming(tracing.tracer("monitor"), event, f"consume {event.type}", {
                "messaging.destination.name": message.topic, "messaging.consumer.group.name": group,
                "messaging.destination.partition.id": str(message.partition),
                "messaging.kafka.offset": message.offset}):
            yield
        outcome = "ok"
    finally:
        metrics.handler_duration.record(time.perf_counter() - started, {
            "group": group, "event_type": event.type, "outcome": outcome})
        metrics.consumed(message.topic, event.type, group, "handled" if outcome == "ok" else "failed")


def _skipped(event_, event: Event | None) -> None:
    """A record this agent does not act on (another type, or undecodable)."""
    event_type = event.type if event is not None else header(_Record(b"", event_.headers).headers, "ce_type")
    metrics.consumed(event_.message.topic, event_type, app.conf.id,
                     "skipped" if event is not None else "undecodable")


async def announce(instance_id: str, project: str, verdict: health.Verdict) -> None:
    await publish(Event("coffer.health.changed.v1", instance_id, source="monitor", project=project, data={
        "instance_id": instance_id, "status": verdict.status, "category": verdict.category,
        "reason": verdict.reason, "observed_at": int(time.time() * 1000)}))


async def alert(instance_id: str, project: str, category: str, message: str, severity: str = "warning") -> None:
    await publish(Event("coffer.health.alert.v1", instance_id, source="monitor", project=project, data={
        "instance_id": instance_id, "category": category, "severity": severity, "message": message,
        "observed_at": int(time.time() * 1000)}))


async def publish(event: Event) -> None:
    instance_id = event.subject
    span = tracing.start_producer_span(T.HEALTH_EVENTS, event.type, attributes={
        "cloudevents.event_id": event.id, "cloudevents.event_subject": instance_id})
    tracing.inject_into(span, event)
    try:
        sent = await health_topic.send(key=instance_id.encode(), value=registry().encode(event.type, event.data),
                                       headers=event.headers())
    except BaseException as exc:
        tracing.end_span(span, exc)
        raise

    def delivered(future) -> None:  # the span ends when the broker acknowledged the record
        error = None if future.cancelled() else future.exception()
        tracing.end_span(span, error)
        if error is None and not future.cancelled():
            metrics.produced(T.HEALTH_EVENTS, event.type)

    if isinstance(sent, asyncio.Future):
        sent.add_done_callback(delivered)
    else:
        tracing.end_span(span)
        metrics.produced(T.HEALTH_EVENTS, event.type)


class _Record:
    """The shape plumbing.bus.decode_record reads, from a faust event."""
    def __init__(self, value: bytes, headers):
        self.value = value
        self.headers = list(headers.items()) if isinstance(headers, dict) else list(headers or [])


def _decode(value: bytes, headers) -> Event | None:
    try:
        return decode_record(_Record(value, headers))
    except DecodeError:
        return None  # the API's consumer dead-letters malformed records; here they are skipped


@app.agent(telemetry)
async def watch_heartbeats(stream):
    async for event_ in stream.events():
        event = _decode(event_.value, event_.headers)
        if event is None or event.type != "coffer.telemetry.heartbeat.v1":
            _skipped(event_, event)
            continue
        with _handling(event, event_):
            iid = event.data["instance_id"]
            verdict = health.from_heartbeat(event.data["engine_up"], event.data.get("engine_stopped", False))
            previous = instances.get(iid)
            sent_at_ms = int(event.data["sent_at"].timestamp() * 1000)  # Avro timestamp-millis decodes to datetime
            seq = event.data["seq"]
            kept = health.next_status(previous.get("status") if previous else None, verdict)
            was_down = previous.get("unhealthy_since") if previous else None
            instances[iid] = {**(previous or {}), "last_seen": sent_at_ms, "status": kept, "project": event.project,
                              "seq": seq,
                              "unhealthy_since": (was_down or sent_at_ms) if kept == "UNHEALTHY" else None}
            await _threshold_alerts(iid, event.project, event.data)
            # a restarted agent counts from 1 again: announce, whatever was known before
            restarted = previous is not None and "seq" in previous and seq <= previous["seq"]
            if health.worth_announcing(previous.get("status") if previous else None, kept, restarted,
                                       iid in announced_silent):
                announced_silent.discard(iid)
                await announce(iid, event.project, verdict)


async def _threshold_alerts(iid: str, project: str, heartbeat: dict) -> None:
    """Each alert once per crossing of its threshold."""
    alerts = health.threshold_alerts(heartbeat, LAG_ALERT_SECONDS, DISK_ALERT_SHARE)
    raised = {category for category, _ in alerts}
    for category, message in alerts:
        if (iid, category) not in alerted:
            alerted.add((iid, category))
            await alert(iid, project, category, message)
    for category in ("replication", "storage"):
        if category not in raised:
            alerted.discard((iid, category))


@app.agent(instance_events)
async def follow_instances(stream):
    """Deleted instances are forgotten; replica set changes say who is primary."""
    async for event_ in stream.events():
        event = _decode(event_.value, event_.headers)
        if event is None or event.type not in ("coffer.instance.deleted.v1", "coffer.instance.replication_changed.v1"):
            _skipped(event_, event)
            continue
        with _handling(event, event_):
            iid = event.data["instance_id"]
            if event.type == "coffer.instance.deleted.v1":
                if iid in instances:
                    del instances[iid]
                announced_silent.discard(iid)
                continue
            d = event.data
            instances[iid] = {**(instances.get(iid) or {"project": event.project}), "role": d["role"],
                              "replicas": len(d["replicas"]) if d["role"] == "primary" else 0,
                              "failover_enabled": d["failover_enabled"], "epoch": d["epoch"]}


@app.timer(interval=TICK_SECONDS)
async def watch_instances():
    now_ms = int(time.time() * 1000)
    for iid, state in list(instances.items()):
        if state is None or "last_seen" not in state:
            continue
        if iid not in announced_silent:
            verdict = health.silent(state["last_seen"], now_ms, SILENCE_SECONDS)
            if verdict:
                announced_silent.add(iid)
                await announce(iid, state.get("project", ""), verdict)
        await _maybe_fail_over(iid, state, now_ms)


async def _maybe_fail_over(iid: str, state: dict, now_ms: int) -> None:
    decision = health.failover_decision(state, now_ms, SILENCE_SECONDS, FAILOVER_DELAY_SECONDS)
    epoch = state.get("epoch", 0)
    if decision is None or failover_asked.get(iid) == epoch:
        return
    failover_asked[iid] = epoch  # once per epoch: a failover raises it
    if decision.action == "alert":
        await alert(iid, state.get("project", ""), "failover", decision.reason, "critical")
        return
    await publish(Event("coffer.failover.requested.v1", iid, source="monitor", project=state.get("project", ""),
                        data={"instance_id": iid, "reason": decision.reason, "epoch": epoch,
                              "observed_at": now_ms}))
