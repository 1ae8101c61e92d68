"""Transactional outbox and inbox. A handler changes its service's state, records
the events it emits (outbox) and the event it handled (inbox) in one transaction;
a relay publishes the outbox right after commit, with polling as a fallback."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Callable

from opentelemetry import context, trace
from sqlalchemy import (Column, Integer, LargeBinary, MetaData, String, Table, Text,
                        delete, event, func, insert, select)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import metrics, tracing
from .bus import Producer
from .codec import registry
from .db import UtcDateTime, is_postgres
from .envelope import Event, utcnow
from .logs import log

logger = logging.getLogger("coffer.outbox")
DEPTH_EVERY_SECONDS = 1.0


def add_tables(metadata: MetaData) -> tuple[Table, Table]:
    outbox = Table(
        "outbox", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("headers", Text, nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
    )
    inbox = Table(
        "inbox", metadata,
        Column("event_id", String(64), primary_key=True),
        Column("handled_at", UtcDateTime(), nullable=False),
    )
    return outbox, inbox


WRITTEN = "coffer.tables_written"  # in a database connection's info: what its transaction wrote


def _note_written(conn, statement, *_args) -> None:
    """Note the table of each INSERT/UPDATE/DELETE made with SQLAlchemy's constructs
    (a text() statement is not seen)."""
    if getattr(statement, "is_dml", False):
        conn.info.setdefault(WRITTEN, set()).add(statement.table.name)


class UnitOfWork:
    """One transaction: state changes + inbox + outbox. Use as `async with uow_factory() as uow`."""

    def __init__(self, store: "Store"):
        self.store = store
        self.conn: AsyncConnection | None = None
        self._emitted = False
        self._span: trace.Span | None = None
        self._token = None

    async def __aenter__(self) -> "UnitOfWork":
        # a CLIENT span around the transaction, current while it runs: events
        # emitted in it carry its context
        self._span = tracing.tracer("coffer.db").start_span(
            f"transaction {self.store.source}", kind=trace.SpanKind.CLIENT,
            attributes=self.store.db_attributes)
        self._token = context.attach(trace.set_span_in_context(self._span))
        try:
            self._ctx = self.store.engine.begin()
            self.conn = await self._ctx.__aenter__()
            self.conn.info.pop(WRITTEN, None)  # left by an earlier user of the database connection
        except BaseException as error:
            self._end_span(error)
            raise
        return self

    async def __aexit__(self, exc_type, exc, tb):
        written = frozenset(self.conn.info.pop(WRITTEN, ()))
        try:
            result = await self._ctx.__aexit__(exc_type, exc, tb)
        except BaseException as error:  # the commit failed (e.g. the inbox's key)
            self._end_span(error)
            raise
        self._end_span(exc)
        if exc_type is None:
            if self._emitted:
                self.store.relay_wakeup.set()
            if written:
                for listener in self.store.commit_listeners:
                    listener(written)
        return result

    def _end_span(self, error: BaseException | None) -> None:
        if self._span is None:
            return
        span, self._span = self._span, None
        span.set_attribute("coffer.emitted", self._emitted)
        tracing.end_span(span, error)
        if self._token is not None:
            context.detach(self._token)
            self._token = None

    async def first_time(self, event: Event) -> bool:
        """Record the event as handled; False if it was handled before (redelivery)."""
        exists = await self.conn.scalar(select(self.store.inbox.c.event_id)
                                        .where(self.store.inbox.c.event_id == event.id))
        if exists:
            return False
        await self.conn.execute(insert(self.store.inbox).values(event_id=event.id, handled_at=utcnow()))
        return True

    async def first_times(self, events: list[Event]) -> list[Event]:
        """first_time for many events with two statements: those not handled before."""
        ids = [e.id for e in events]
        seen = set((await self.conn.execute(select(self.store.inbox.c.event_id)
                                            .where(self.store.inbox.c.event_id.in_(ids)))).scalars())
        fresh, fresh_ids = [], set()
        for event in events:
            if event.id not in seen and event.id not in fresh_ids:
                fresh.append(event)
                fresh_ids.add(event.id)
        if fresh:
            moment = utcnow()
            await self.conn.execute(insert(self.store.inbox),
                                    [{"event_id": e.id, "handled_at": moment} for e in fresh])
        return fresh

    def _outbox_row(self, topic: str, event: Event) -> dict:
        tracing.stamp(event)
        if not event.source:
            event.source = self.store.source
        value = registry().encode(event.type, event.data)  # fail now, not in the relay
        return dict(topic=topic, key=event.subject, value=value, created_at=utcnow(),
                    headers=json.dumps([[k, v.decode()] for k, v in event.headers()]))

    async def emit(self, topic: str, event: Event) -> None:
        await self.conn.execute(insert(self.store.outbox).values(**self._outbox_row(topic, event)))
        self._emitted = True

    async def emit_many(self, topic: str, events: list[Event]) -> None:
        if events:
            await self.conn.execute(insert(self.store.outbox), [self._outbox_row(topic, e) for e in events])
            self._emitted = True


class Store:
    """A service's database with its outbox, inbox and relay."""

    def __init__(self, engine: AsyncEngine, metadata: MetaData, source: str):
        self.engine, self.metadata, self.source = engine, metadata, source
        self.outbox = metadata.tables["outbox"]
        self.inbox = metadata.tables["inbox"]
        self.relay_wakeup = asyncio.Event()
        # called with the names of the tables a unit of work wrote once it committed,
        # before its caller goes on (an in-memory read model forgets what changed)
        self.commit_listeners: list[Callable[[frozenset[str]], None]] = []
        if not event.contains(engine.sync_engine, "after_execute", _note_written):
            event.listen(engine.sync_engine, "after_execute", _note_written)
        self.db_attributes = {"db.system.name": engine.dialect.name,
                              "db.namespace": engine.url.database or "", "coffer.service": source}
        self._depth_measured = 0.0

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self)

    async def handled_once(self, event: Event, apply) -> None:
        """Run `apply(uow)` unless the event was handled before; concurrent
        redeliveries are resolved by the inbox's primary key."""
        try:
            async with self.uow() as uow:
                if await uow.first_time(event):
                    await apply(uow)
        except IntegrityError:
            log(logger, logging.INFO, "event already handled", event_id=event.id)

    async def handled_batch(self, events: list[Event], apply) -> None:
        """Run `apply(uow, event)` for each event not handled before, all in ONE
        transaction: a fetched batch costs one commit instead of one per event. If
        it fails, nothing of it is kept and the caller handles the events one by one."""
        consumer_tracer = tracing.tracer(self.source)
        async with self.uow() as uow:
            for event in await uow.first_times(events):
                with tracing.consuming(consumer_tracer, event, f"consume {event.type}"):
                    await apply(uow, event)

    async def relay(self, producer: Producer, poll_seconds: float = 1.0) -> None:
        while True:
            try:
                await asyncio.wait_for(self.relay_wakeup.wait(), poll_seconds)
            except asyncio.TimeoutError:
                pass
            self.relay_wakeup.clear()
            try:
                if metrics.enabled():
                    await self._measure_depth()
                while await self._publish_batch(producer):
                    pass
            except Exception as exc:  # broker away: keep the rows, try again later
                log(logger, logging.WARNING, "outbox relay failed", error=repr(exc))
                await asyncio.sleep(poll_seconds)

    async def _publish_batch(self, producer: Producer, size: int = 200) -> int:
        query = select(self.outbox).order_by(self.outbox.c.id).limit(size)
        if is_postgres(self.engine):
            # row locks let several relays of one service share the outbox
            async with self.engine.begin() as conn:
                rows = (await conn.execute(query.with_for_update(skip_locked=True))).all()
                await self._send(producer, rows)
                await self._delete(conn, rows)
            return len(rows)
        # SQLite has one writer: never hold its lock while waiting for the broker
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        await self._send(producer, rows)
        async with self.engine.begin() as conn:
            await self._delete(conn, rows)
        return len(rows)

    async def _measure_depth(self) -> None:
        """Rows waiting, at most once a second (a count query)."""
        now = time.monotonic()
        if now - self._depth_measured < DEPTH_EVERY_SECONDS:
            return
        self._depth_measured = now
        async with self.engine.connect() as conn:
            depth = await conn.scalar(select(func.count()).select_from(self.outbox))
        metrics.outbox_depth.set(depth or 0, {"service": self.source})

    @staticmethod
    async def _send(producer: Producer, rows) -> None:
        """Send the rows, each in a PRODUCER span whose parent is the context the row
        was emitted in; the record carries the producer span's context."""
        spans, futures, types = [], [], []
        try:
            for r in rows:
                headers = [(k, v.encode()) for k, v in json.loads(r.headers)]
                h = {k: v.decode() for k, v in headers}
                span = tracing.start_producer_span(
                    r.topic, h.get("ce_type", ""), h.get("traceparent", ""), h.get("tracestate", ""),
                    {"cloudevents.event_id": h.get("ce_id"), "cloudevents.event_subject": r.key,
                     "coffer.outbox.id": r.id})
                spans.append(span)
                types.append(h.get("ce_type", ""))
                futures.append(await producer.send_raw(r.topic, r.key.encode(), r.value,
                                                       tracing.with_trace_headers(span, headers)))
            results = await asyncio.gather(*futures, return_exceptions=True)
        except BaseException as exc:
            for span in spans:
                tracing.end_span(span, exc)
            raise
        failed = None
        for r, event_type, span, result in zip(rows, types, spans, results):
            if isinstance(result, BaseException):
                failed = failed or result
                tracing.end_span(span, result)
            else:
                tracing.end_span(span)
                metrics.produced(r.topic, event_type)
        if failed is not None:
            raise failed

    async def _delete(self, conn, rows) -> None:
        if rows:
            await conn.execute(delete(self.outbox).where(self.outbox.c.id.in_([r.id for r in rows])))
