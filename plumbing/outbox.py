"""Transactional outbox and inbox. A handler changes its service's state, records
the events it emits (outbox) and the event it handled (inbox) in one transaction;
a relay publishes the outbox right after commit, with polling as a fallback."""
from __future__ import annotations

import asyncio
import json
import logging

from sqlalchemy import (Column, DateTime, Integer, LargeBinary, MetaData, String, Table, Text,
                        delete, insert, select)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import tracing
from .bus import Producer
from .codec import registry
from .db import is_postgres
from .envelope import Event, utcnow
from .logs import log

logger = logging.getLogger("coffer.outbox")


def add_tables(metadata: MetaData) -> tuple[Table, Table]:
    outbox = Table(
        "outbox", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("headers", Text, nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    inbox = Table(
        "inbox", metadata,
        Column("event_id", String(64), primary_key=True),
        Column("handled_at", DateTime(timezone=True), nullable=False),
    )
    return outbox, inbox


class UnitOfWork:
    """One transaction: state changes + inbox + outbox. Use as `async with uow_factory() as uow`."""

    def __init__(self, store: "Store"):
        self.store = store
        self.conn: AsyncConnection | None = None
        self._emitted = False

    async def __aenter__(self) -> "UnitOfWork":
        self._ctx = self.store.engine.begin()
        self.conn = await self._ctx.__aenter__()
        return self

    async def __aexit__(self, exc_type, exc, tb):
        result = await self._ctx.__aexit__(exc_type, exc, tb)
        if exc_type is None and self._emitted:
            self.store.relay_wakeup.set()
        return result

    async def first_time(self, event: Event) -> bool:
        """Record the event as handled; False if it was handled before (redelivery)."""
        exists = await self.conn.scalar(select(self.store.inbox.c.event_id)
                                        .where(self.store.inbox.c.event_id == event.id))
        if exists:
            return False
        await self.conn.execute(insert(self.store.inbox).values(event_id=event.id, handled_at=utcnow()))
        return True

    async def emit(self, topic: str, event: Event) -> None:
        tracing.stamp(event)
        if not event.source:
            event.source = self.store.source
        value = registry().encode(event.type, event.data)  # fail now, not in the relay
        await self.conn.execute(insert(self.store.outbox).values(
            topic=topic, key=event.subject, value=value, created_at=utcnow(),
            headers=json.dumps([[k, v.decode()] for k, v in event.headers()])))
        self._emitted = True


class Store:
    """A service's database with its outbox, inbox and relay."""

    def __init__(self, engine: AsyncEngine, metadata: MetaData, source: str):
        self.engine, self.metadata, self.source = engine, metadata, source
        self.outbox = metadata.tables["outbox"]
        self.inbox = metadata.tables["inbox"]
        self.relay_wakeup = asyncio.Event()

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

    async def relay(self, producer: Producer, poll_seconds: float = 1.0) -> None:
        while True:
            try:
                await asyncio.wait_for(self.relay_wakeup.wait(), poll_seconds)
            except asyncio.TimeoutError:
                pass
            self.relay_wakeup.clear()
            try:
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

    @staticmethod
    async def _send(producer: Producer, rows) -> None:
        futures = [await producer.send_raw(r.topic, r.key.encode(), r.value,
                                           [(k, v.encode()) for k, v in json.loads(r.headers)])
                   for r in rows]
        await asyncio.gather(*futures)

    async def _delete(self, conn, rows) -> None:
        if rows:
            await conn.execute(delete(self.outbox).where(self.outbox.c.id.in_([r.id for r in rows])))
