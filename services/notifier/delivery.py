"""Matching events to subscriptions, and the delivery loop."""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import datetime, timedelta, timezone

import aiohttp
from sqlalchemy import delete, select, update

from plumbing import catalog, webhooks
from plumbing import topics as T
from plumbing.envelope import Event
from plumbing.logs import log
from plumbing.outbox import Store, UnitOfWork

from . import rules
from .tables import deliveries, subscriptions

SOURCE = "notifier"
PENDING_WINDOW = 2000  # oldest pending deliveries looked at per round
CONCURRENCY = 64
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
        """The oldest pending delivery of each (subscription, resource) pair, if it is
        due: a later event about a resource never overtakes an earlier one."""
        query = (select(deliveries, subscriptions.c.url, subscriptions.c.sealed_secret)
                 .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
                 .where(deliveries.c.status == "pending").order_by(deliveries.c.seq).limit(PENDING_WINDOW))
        async with self.store.engine.connect() as conn:
            pending = (await conn.execute(query)).all()
        heads: dict[tuple[str, str], object] = {}
        for row in pending:
            heads.setdefault((row.subscription_id, row.resource_id), row)
        moment = now()
        return [row for row in heads.values() if _aware(row.next_attempt_at) <= moment]

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
                for url in {row.url for row in due}:
                    try:
                        await asyncio.to_thread(webhooks.check_target, url)
                    except webhooks.TargetRefused as exc:
                        refusals[url] = f"target refused: {exc}"

                async def attempt(row):
                    async with limit:
                        if row.url in refusals:
                            return row, None, refusals[row.url]
                        return row, *await self._post(http, row)
                await self._record(await asyncio.gather(*(attempt(r) for r in due)))

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
        the event that tells the api about it."""
        async with self.store.uow() as uow:
            for row, status_code, error in results:
                attempt_no = row.attempts + 1
                status = rules.outcome(attempt_no, not error)
                next_at = now() + timedelta(seconds=rules.retry_delay(attempt_no)) if status == "retrying" else None
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
                    log(logger, logging.WARNING, "delivery failed", delivery_id=row.id,
                        subscription_id=row.subscription_id, attempt=attempt_no, status=status, error=error)


def _aware(moment: datetime) -> datetime:
    # SQLite hands datetimes back without their zone; they were stored in UTC
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
