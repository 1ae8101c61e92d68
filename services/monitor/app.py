"""The monitor: keeps each instance's last heartbeat in a faust table (recovered
from its changelog) and announces health changes on coffer.health.events."""
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

# instance id -> {"last_seen": ms, "status": HEALTHY|UNHEALTHY, "project": str, "seq": int}
instances = app.Table("instance-health", default=None, partitions=kafka.partitions)
announced_silent: set[str] = set()


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
    event = Event("coffer.health.changed.v1", instance_id, source="monitor", project=project, data={
        "instance_id": instance_id, "status": verdict.status, "category": verdict.category,
        "reason": verdict.reason, "observed_at": int(time.time() * 1000)})
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
            kept = health.next_status(previous["status"] if previous else None, verdict)
            instances[iid] = {"last_seen": sent_at_ms, "status": kept, "project": event.project, "seq": seq}
            # a restarted agent counts from 1 again: announce, whatever was known before
            restarted = previous is not None and seq <= previous.get("seq", 0)
            if health.worth_announcing(previous["status"] if previous else None, kept, restarted,
                                       iid in announced_silent):
                announced_silent.discard(iid)
                await announce(iid, event.project, verdict)


@app.agent(instance_events)
async def forget_deleted(stream):
    async for event_ in stream.events():
        event = _decode(event_.value, event_.headers)
        if event is None or event.type != "coffer.instance.deleted.v1":
            _skipped(event_, event)
        else:
            with _handling(event, event_):
                iid = event.data["instance_id"]
                if iid in instances:
                    del instances[iid]
                announced_silent.discard(iid)


@app.timer(interval=1.0)
async def find_silent_agents():
    now_ms = int(time.time() * 1000)
    for iid, state in list(instances.items()):
        if state is None or iid in announced_silent:
            continue
        verdict = health.silent(state["last_seen"], now_ms, SILENCE_SECONDS)
        if verdict:
            announced_silent.add(iid)
            await announce(iid, state.get("project", ""), verdict)
