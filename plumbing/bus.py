"""Kafka wiring: one producer per process, consumer loops with a dead-letter topic.
Settings are the same for any Kafka; see ../shared/reference/broker.md for why
idempotence is off and offsets start at the earliest record."""
from __future__ import annotations

import asyncio
import logging
import time
import traceback
from typing import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from . import metrics
from . import topics as T
from . import tracing
from .codec import DecodeError, registry
from .config import KafkaSettings
from .envelope import Event, header
from .logs import log

logger = logging.getLogger("coffer.bus")

Handler = Callable[[Event], Awaitable[None]]
BatchHandler = Callable[[list[Event]], Awaitable[None]]
HANDLER_ATTEMPTS = 3
LAG_EVERY_SECONDS = 1.0


async def ensure_topics(settings: KafkaSettings, names: Iterable[str] = T.ALL) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(n, settings.partitions, settings.replication_factor)
                  for n in names if n not in existing]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another service created them first
    finally:
        await admin.close()


class Producer:
    def __init__(self, settings: KafkaSettings, source: str):
        self.source = source
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=False,
            max_request_size=8 * 1024 * 1024, linger_ms=0)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, topic: str, event: Event) -> None:
        """Encode and send; returns when the broker acknowledged it. A PRODUCER span
        covers the send, and its context becomes the event's traceparent."""
        if not event.source:
            event.source = self.source
        value = registry().encode(event.type, event.data)
        span = tracing.start_producer_span(topic, event.type, event.traceparent, event.tracestate,
                                           {"cloudevents.event_id": event.id,
                                            "cloudevents.event_subject": event.subject})
        tracing.inject_into(span, event)
        try:
            await self._producer.send_and_wait(topic, value, key=event.subject.encode(),
                                               headers=event.headers())
        except BaseException as exc:
            tracing.end_span(span, exc)
            raise
        tracing.end_span(span)
        metrics.produced(topic, event.type)

    async def send_raw(self, topic: str, key: bytes, value: bytes, headers) -> asyncio.Future:
        return await self._producer.send(topic, value, key=key, headers=headers)


def decode_record(record) -> Event:
    event_type = header(record.headers, "ce_type")
    if not event_type:
        raise DecodeError("record has no ce_type header")
    data = registry().decode(event_type, record.value)
    return Event.from_headers(record.headers, data)


class ConsumerLoop:
    """Consumes topics in a group; each record is decoded and handed to `handler`.
    Undecodable records and records whose handler keeps failing go to the
    dead-letter topic with the error, and consumption moves on."""

    def __init__(self, settings: KafkaSettings, producer: Producer, group: str,
                 topic_names: list[str], handler: Handler, wanted_types: set[str] | None = None,
                 tracer=None, batch_handler: BatchHandler | None = None):
        self.settings, self.producer, self.handler = settings, producer, handler
        self.batch_handler = batch_handler  # all events of a fetch at once, when given
        self.tracer = tracer or tracing.setup(producer.source)
        self.group, self.topic_names = settings.group(group), topic_names
        self.wanted_types = wanted_types
        self._consumer: AIOKafkaConsumer | None = None
        self._lag_measured = 0.0

    async def start(self) -> None:
        s = self.settings
        self._consumer = AIOKafkaConsumer(
            *self.topic_names, bootstrap_servers=s.bootstrap, group_id=self.group,
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=s.session_timeout_ms, heartbeat_interval_ms=s.heartbeat_interval_ms,
            rebalance_timeout_ms=max(2 * s.session_timeout_ms, 6000),
            fetch_max_wait_ms=s.fetch_max_wait_ms, max_poll_records=200)
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            if metrics.enabled():
                await self._measure_lag(batches)
            if not batches:
                continue
            # Across topics, handle records in the order they were produced: a reply
            # (placed) must not overtake the request it answers (create_requested).
            records = sorted((r for rs in batches.values() for r in rs), key=lambda r: r.timestamp)
            if self.batch_handler is not None and len(records) > 1:
                await self._handle_batch(records)
            else:
                for record in records:
                    await self._handle(record)
            await self._consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})

    async def _measure_lag(self, batches) -> None:
        """Lag per assigned partition: the fetch's high watermark minus the position
        (the batch just fetched counts as behind until it is handled)."""
        now = time.monotonic()
        if now - self._lag_measured < LAG_EVERY_SECONDS:
            return
        self._lag_measured = now
        fetched = {tp: len(rs) for tp, rs in batches.items()}
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue  # nothing fetched from it yet
            try:
                position = await self._consumer.position(tp)
            except (KafkaError, AssertionError):
                continue  # assignment changed under us
            lag = max(highwater - position, 0) + fetched.get(tp, 0)
            metrics.consumer_lag.set(lag, {"group": self.group, "topic": tp.topic,
                                           "partition": str(tp.partition)})

    async def _decode(self, record) -> Event | None:
        """The record's event, or None when it is someone else's or was dead-lettered."""
        event_type = header(record.headers, "ce_type")
        if (self.wanted_types is not None and event_type not in self.wanted_types
                and event_type in registry().current):
            metrics.consumed(record.topic, event_type, self.group, "skipped")
            return None  # a well-formed event meant for other consumers of a shared topic
        try:
            return decode_record(record)
        except DecodeError as exc:
            await self.dead_letter(record, f"decode: {exc}")
            metrics.consumed(record.topic, event_type, self.group, "dead_lettered")
            return None

    async def _handle_batch(self, records) -> None:
        decoded = [(r, e) for r in records if (e := await self._decode(r)) is not None]
        if not decoded:
            return
        started = time.perf_counter()
        try:
            await self.batch_handler([e for _r, e in decoded])
        except Exception as exc:  # find the culprit: one by one, with retries and the DLQ
            log(logger, logging.WARNING, "batch failed; handling its events one by one", group=self.group,
                events=len(decoded), error=repr(exc))
            for record, event in decoded:
                await self._handle(record, event)
            return
        for record, event in decoded:
            self._handled(event, started, "ok")
            metrics.consumed(record.topic, event.type, self.group, "handled")

    async def _handle(self, record, event: Event | None = None) -> None:
        if event is None:
            event = await self._decode(record)
            if event is None:
                return
        span_attributes = {"messaging.destination.name": record.topic,
                           "messaging.consumer.group.name": self.group,
                           "messaging.destination.partition.id": str(record.partition),
                           "messaging.kafka.offset": record.offset}
        for attempt in range(1, HANDLER_ATTEMPTS + 1):
            started = time.perf_counter()
            try:
                with tracing.consuming(self.tracer, event, f"consume {event.type}",
                                       {**span_attributes, "coffer.attempt": attempt}):
                    await self.handler(event)
                self._handled(event, started, "ok")
                metrics.consumed(record.topic, event.type, self.group, "handled")
                return
            except Exception as exc:  # a handler bug must not stop the consumer
                self._handled(event, started, "error")
                log(logger, logging.WARNING, "handler failed", group=self.group,
                    event_type=event.type, event_id=event.id, attempt=attempt, error=repr(exc))
                if attempt == HANDLER_ATTEMPTS:
                    await self.dead_letter(record, "handler: " + "".join(
                        traceback.format_exception_only(exc)).strip())
                    metrics.consumed(record.topic, event.type, self.group, "dead_lettered")
                    return
                await asyncio.sleep(0.2 * attempt)

    def _handled(self, event: Event, started: float, outcome: str) -> None:
        metrics.handler_duration.record(time.perf_counter() - started, {
            "group": self.group, "event_type": event.type, "outcome": outcome})

    async def dead_letter(self, record, error: str) -> None:
        headers = list(record.headers or ()) + [
            ("coffer_dlq_error", error[:2000].encode()),
            ("coffer_dlq_topic", record.topic.encode()),
            ("coffer_dlq_partition", str(record.partition).encode()),
            ("coffer_dlq_offset", str(record.offset).encode()),
            ("coffer_dlq_group", self.group.encode())]
        fut = await self.producer.send_raw(T.DEAD_LETTER, record.key or b"", record.value or b"", headers)
        await fut
        metrics.produced(T.DEAD_LETTER, header(record.headers, "ce_type"))
        log(logger, logging.ERROR, "record dead-lettered", group=self.group, topic=record.topic,
            offset=record.offset, error=error[:500])
