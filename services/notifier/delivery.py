"""Matching events to subscriptions, and the delivery loop."""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import datetime, timedelta, timezone

import aiohttp
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import aliased

from plumbing import catalog, webhooks
from plumbing import topics as T
from plumbing.envelope import Event
from plumbing.logs import log
from plumbing.outbox import Store, UnitOfWork

from . import rules
from .tables import deliveries, subscriptions

SOURCE = "notifier"
BATCH = 100
CONCURRENCY = 32
logger = logging.getLogger("notifier")


def now() -> datetime:
    return datetime.now(timezone.utc)


def _subscription(row) -> rules.Subscription:
    return rules.Subscription(row.id, row.project_id, tuple(json.loads(row.event_types)),
                              tuple(json.loads(row.categories)), tuple(json.loads(row.resource_ids)),
                              bool(row.enabled))


class Notifier:
    def __init__(self, store: Store):
        self.store = store
        self.wakeup = asyncio.Event()
        self._subs: dict[str, rules.Subscription] | None = None  # cache, reloaded on change

    # -- what the api tells us ---------------------------------------------
    async def subscription_changed(self, event: Event) -> None:
        d = event.data

        async def apply(uow: UnitOfWork):
            await uow.conn.execute(delete(subscriptions).where(subscriptions.c.id == d["subscription_id"]))
            await uow.conn.execute(subscriptions.insert().values(
                id=d["subscription_id"], project_id=d["project_id"], url=d["url"],
                event_types=json.dumps(d["event_types"]), categories=json.dumps(d["categories"]),
                resource_ids=json.dumps(d["resource_ids"]), enabled=d["enabled"], sealed_secret=d["sealed_secret"]))
        await self.store.handled_once(event, apply)
        self._subs = None

    async def subscription_deleted(self, event: Event) -> None:
        sid = event.data["subscription_id"]

        async def apply(uow: UnitOfWork):
            await uow.conn.execute(delete(subscriptions).where(subscriptions.c.id == sid))
            await uow.conn.execute(delete(deliveries).where(deliveries.c.subscription_id == sid,
                                                            deliveries.c.status == "pending"))
        await self.store.handled_once(event, apply)
        self._subs = None

    # -- public events in ----------------------------------------------------
    async def _subscriptions(self, conn) -> dict[str, rules.Subscription]:
        if self._subs is None:
            self._subs = {r.id: _subscription(r) for r in (await conn.execute(select(subscriptions))).all()}
        return self._subs

    async def public_event(self, event: Event) -> None:
        async with self.store.engine.connect() as conn:
            subs = await self._subscriptions(conn)
        category = catalog.category_of(event.type, event.data)
        wanted = [s for s in subs.values() if rules.matches(s, event.project, event.type, category, event.subject)]
        if not wanted:
            return  # nothing to record: most telemetry ends here
        body = webhooks.cloudevent_json(event)

        async def apply(uow: UnitOfWork):
            for sub in wanted:
                await uow.conn.execute(deliveries.insert().values(
                    id=str(uuid.uuid4()), subscription_id=sub.id, resource_id=event.subject, event_id=event.id,
                    event_type=event.type, body=body, status="pending", attempts=0, next_attempt_at=now(),
                    last_error=""))
        await self.store.handled_once(event, apply)
        self.wakeup.set()

    # -- delivering ------------------------------------------------------------
    async def _due(self) -> list:
        """The oldest pending delivery of each (subscription, resource) pair, if due:
        a later event for a resource never overtakes an earlier one."""
        older = aliased(deliveries)
        first_pending = (select(func.min(older.c.seq)).where(
            older.c.status == "pending", older.c.subscription_id == deliveries.c.subscription_id,
            older.c.resource_id == deliveries.c.resource_id).scalar_subquery())
        query = (select(deliveries, subscriptions.c.url, subscriptions.c.sealed_secret)
                 .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
                 .where(deliveries.c.status == "pending", deliveries.c.seq == first_pending,
                        deliveries.c.next_attempt_at <= now())
                 .order_by(deliveries.c.seq).limit(BATCH))
        async with self.store.engine.connect() as conn:
            return (await conn.execute(query)).all()

    async def run(self, poll_seconds: float = 0.2) -> None:
        limit = asyncio.Semaphore(CONCURRENCY)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            while True:
                due = await self._due()
                if not due:
                    try:
                        await asyncio.wait_for(self.wakeup.wait(), poll_seconds)
                    except asyncio.TimeoutError:
                        pass
                    self.wakeup.clear()
                    continue

                async def attempt(row):
                    async with limit:
                        await self._attempt(http, row)
                await asyncio.gather(*(attempt(r) for r in due))

    async def _attempt(self, http: aiohttp.ClientSession, row) -> None:
        status_code, error = None, ""
        try:
            await asyncio.to_thread(webhooks.check_target, row.url)  # again: DNS may have changed
            stamp = int(time.time())
            headers = {"Content-Type": "application/cloudevents+json; charset=utf-8",
                       webhooks.SIGNATURE_HEADER: webhooks.signature(webhooks.open_secret(row.sealed_secret),
                                                                     stamp, row.body),
                       "User-Agent": "coffer-notifier"}
            async with http.post(row.url, data=row.body, headers=headers, allow_redirects=False) as resp:
                status_code = resp.status
                await resp.read()
            ok = 200 <= status_code < 300
            if not ok:
                error = f"HTTP {status_code}" + (" (redirects are not followed)" if 300 <= status_code < 400 else "")
        except webhooks.TargetRefused as exc:
            ok, error = False, f"target refused: {exc}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"[:500]
        attempt_no = row.attempts + 1
        status = rules.outcome(attempt_no, ok)
        next_at = now() + timedelta(seconds=rules.retry_delay(attempt_no)) if status == "retrying" else None
        async with self.store.uow() as uow:
            await uow.conn.execute(update(deliveries).where(deliveries.c.id == row.id).values(
                attempts=attempt_no, status="pending" if status == "retrying" else status,
                next_attempt_at=next_at or now(), last_status_code=status_code, last_error=error))
            await uow.emit(T.SUBSCRIPTION_EVENTS, Event(
                "coffer.subscription.delivery_attempted.v1", row.subscription_id, source=SOURCE, data={
                    "delivery_id": row.id, "subscription_id": row.subscription_id, "event_id": row.event_id,
                    "event_type": row.event_type, "resource_id": row.resource_id, "attempt": attempt_no,
                    "status": status, "status_code": status_code, "error": error,
                    "next_attempt_at": next_at, "attempted_at": now()}))
        if status != "delivered":
            log(logger, logging.WARNING, "delivery failed", delivery_id=row.id, subscription_id=row.subscription_id,
                attempt=attempt_no, status=status, error=error)
