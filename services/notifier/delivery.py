"""Matching events to subscriptions, and the delivery loop."""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import datetime, timedelta, timezone

import aiohttp
from sqlalchemy import bindparam, delete, select, update

from plumbing import catalog, metrics, webhooks
from plumbing import topics as T
from plumbing.envelope import Event
from plumbing.logs import log
from plumbing.outbox import Store, UnitOfWork

from . import rules
from .tables import deliveries, subscriptions

SOURCE = "notifier"
SUBSCRIPTION_TYPES = {"coffer.subscription.changed.v1", "coffer.subscription.deleted.v1"}
PENDING_WINDOW = 5000  # oldest pending deliveries looked at per round
CHAIN_LENGTH = 50      # deliveries to one (subscription, resource) pair per round, in order
CONCURRENCY = 64       # pairs delivered to at once
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

    # -- events in ------------------------------------------------------------
    async def _subscriptions(self, conn) -> dict[str, rules.Subscription]:
        if self._subs is None:
            self._subs = {r.id: _subscription(r) for r in (await conn.execute(select(subscriptions))).all()}
        return self._subs

    async def _matching(self, conn, event: Event) -> list[rules.Subscription]:
        subs = await self._subscriptions(conn)
        category = catalog.category_of(event.type, event.data)
        return [s for s in subs.values() if rules.matches(s, event.project, event.type, category, event.subject)]

    async def _apply(self, uow: UnitOfWork, event: Event) -> None:
        """What one event changes: a subscription, or the deliveries to make."""
        d = event.data
        if event.type in SUBSCRIPTION_TYPES:
            self._subs = None
            await uow.conn.execute(delete(subscriptions).where(subscriptions.c.id == d["subscription_id"]))
            if event.type == "coffer.subscription.changed.v1":
                await uow.conn.execute(subscriptions.insert().values(
                    id=d["subscription_id"], project_id=d["project_id"], url=d["url"],
                    event_types=json.dumps(d["event_types"]), categories=json.dumps(d["categories"]),
                    resource_ids=json.dumps(d["resource_ids"]), enabled=d["enabled"],
                    sealed_secret=d["sealed_secret"]))
            else:
                await uow.conn.execute(delete(deliveries).where(
                    deliveries.c.subscription_id == d["subscription_id"], deliveries.c.status == "pending"))
            return
        wanted = await self._matching(uow.conn, event)
        if not wanted:
            return
        body = webhooks.cloudevent_json(event)
        for sub in wanted:
            await uow.conn.execute(deliveries.insert().values(
                id=str(uuid.uuid4()), subscription_id=sub.id, resource_id=event.subject, event_id=event.id,
                event_type=event.type, body=body, status="pending", attempts=0, next_attempt_at=now(),
                last_error=""))

    async def _worth_recording(self, events: list[Event]) -> list[Event]:
        """Events that change something: most telemetry matches no subscription and
        then needs neither a transaction nor an inbox row."""
        if any(e.type in SUBSCRIPTION_TYPES for e in events):
            return events  # matching depends on the order: keep them all
        async with self.store.engine.connect() as conn:
            return [e for e in events if await self._matching(conn, e)]

    async def _record_deliveries(self, events: list[Event]) -> None:
        """The common case, a batch of public events: a few statements for all of it."""
        if not events:
            return
        async with self.store.uow() as uow:
            rows = []
            for event in await uow.first_times(events):
                body = webhooks.cloudevent_json(event)
                rows += [dict(id=str(uuid.uuid4()), subscription_id=sub.id, resource_id=event.subject,
                              event_id=event.id, event_type=event.type, body=body, status="pending", attempts=0,
                              next_attempt_at=now(), last_error="")
                         for sub in await self._matching(uow.conn, event)]
            if rows:
                await uow.conn.execute(deliveries.insert(), rows)

    async def handle(self, event: Event) -> None:
        try:
            for e in await self._worth_recording([event]):
                await self.store.handled_once(e, lambda uow, e=e: self._apply(uow, e))
        finally:
            self._subs = None if event.type in SUBSCRIPTION_TYPES else self._subs
        self.wakeup.set()

    async def handle_batch(self, events: list[Event]) -> None:
        try:
            if any(e.type in SUBSCRIPTION_TYPES for e in events):
                await self.store.handled_batch(events, self._apply)
            else:
                await self._record_deliveries(await self._worth_recording(events))
        finally:
            if any(e.type in SUBSCRIPTION_TYPES for e in events):
                self._subs = None  # a rolled-back batch must not leave its changes cached
        self.wakeup.set()

    # -- delivering ------------------------------------------------------------
    async def _due(self) -> list[list]:
        """Per (subscription, resource) pair, its oldest pending deliveries in order,
        when the oldest is due: a later event about a resource never overtakes an
        earlier one."""
        query = (select(deliveries, subscriptions.c.url, subscriptions.c.sealed_secret)
                 .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
                 .where(deliveries.c.status == "pending").order_by(deliveries.c.seq).limit(PENDING_WINDOW))
        async with self.store.engine.connect() as conn:
            pending = (await conn.execute(query)).all()
        chains: dict[tuple[str, str], list] = {}
        for row in pending:
            chain = chains.setdefault((row.subscription_id, row.resource_id), [])
            if len(chain) < CHAIN_LENGTH:
                chain.append(row)
        moment = now()
        return [chain for chain in chains.values() if chain[0].next_attempt_at <= moment]

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
                # resolve each target once a round: DNS may have changed since it was accepted
                refusals = {}
                for url in {chain[0].url for chain in due}:
                    try:
                        await asyncio.to_thread(webhooks.check_target, url)
                    except webhooks.TargetRefused as exc:
                        refusals[url] = f"target refused: {exc}"

                async def deliver(chain) -> list:
                    """In order; the first failure stops the chain until its retry."""
                    results = []
                    async with limit:
                        for row in chain:
                            if row.url in refusals:
                                status_code, error = None, refusals[row.url]
                            else:
                                status_code, error = await self._post(http, row)
                            results.append((row, status_code, error))
                            if error:
                                break
                    return results
                rounds = await asyncio.gather(*(deliver(chain) for chain in due))
                await self._record([result for results in rounds for result in results])

    async def _post(self, http: aiohttp.ClientSession, row) -> tuple[int | None, str]:
        headers = {"Content-Type": "application/cloudevents+json; charset=utf-8",
                   webhooks.SIGNATURE_HEADER: webhooks.signature(webhooks.open_secret(row.sealed_secret),
                                                                 int(time.time()), row.body),
                   "User-Agent": "coffer-notifier"}
        try:
            async with http.post(row.url, data=row.body, headers=headers, allow_redirects=False) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    return resp.status, ""
                return resp.status, f"HTTP {resp.status}" + (
                    " (redirects are not followed)" if 300 <= resp.status < 400 else "")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]

    async def _record(self, results) -> None:
        """One transaction for a round of attempts: each delivery's new state and
        the events that tell the api about it."""
        changes, announcements = [], []
        for row, status_code, error in results:
            attempt_no = row.attempts + 1
            status = rules.outcome(attempt_no, not error)
            next_at = now() + timedelta(seconds=rules.retry_delay(attempt_no)) if status == "retrying" else None
            changes.append({"delivery": row.id, "attempts": attempt_no,
                            "status": "pending" if status == "retrying" else status,
                            "next_attempt_at": next_at or now(), "last_status_code": status_code,
                            "last_error": error})
            announcements.append(Event(
                "coffer.subscription.delivery_attempted.v1", row.subscription_id, source=SOURCE, data={
                    "delivery_id": row.id, "subscription_id": row.subscription_id, "event_id": row.event_id,
                    "event_type": row.event_type, "resource_id": row.resource_id, "attempt": attempt_no,
                    "status": status, "status_code": status_code, "error": error,
                    "next_attempt_at": next_at, "attempted_at": now()}))
            metrics.webhook_delivered(status, row.event_type)
            if status != "delivered":
                log(logger, logging.WARNING, "delivery failed", delivery_id=row.id,
                    subscription_id=row.subscription_id, attempt=attempt_no, status=status, error=error)
        async with self.store.uow() as uow:
            await uow.conn.execute(
                update(deliveries).where(deliveries.c.id == bindparam("delivery")).values(
                    attempts=bindparam("attempts"), status=bindparam("status"),
                    next_attempt_at=bindparam("next_attempt_at"), last_status_code=bindparam("last_status_code"),
                    last_error=bindparam("last_error")),
                changes)
            await uow.emit_many(T.SUBSCRIPTION_EVENTS, announcements)

