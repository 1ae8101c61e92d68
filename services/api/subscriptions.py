"""Event types and webhook subscriptions (an extension beyond Trove, after RDS
event subscriptions): /v1.0/{project}/event-types and /subscriptions."""
from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from datetime import datetime, timezone

from aiohttp import web
from sqlalchemy import delete, select, update

from plumbing import catalog, webhooks
from plumbing import topics as T
from plumbing.envelope import Event

from . import policy
from .faults import bad_request, not_found
from .openapi import BOOL, STR, V, listing, obj, op, param, ref, wrapped
from .rest import accepted, read_json
from .tables import deliveries, subscriptions
from .views import ts

SOURCE = "api"
FIELDS = {"url", "event_types", "categories", "resource_ids", "enabled", "secret"}


def now() -> datetime:
    return datetime.now(timezone.utc)


def view(row, secret: str | None = None) -> dict:
    doc = {"id": row.id, "url": row.url, "event_types": json.loads(row.event_types),
           "categories": json.loads(row.categories), "resource_ids": json.loads(row.resource_ids),
           "enabled": bool(row.enabled), "created": ts(row.created_at), "updated": ts(row.updated_at)}
    if secret is not None:
        doc["secret"] = secret  # shown once, when it is set
    return doc


def delivery_view(row) -> dict:
    return {"id": row.id, "event_id": row.event_id, "event_type": row.event_type,
            "resource_id": row.resource_id, "attempts": row.attempts, "status": row.status,
            "last_status_code": row.last_status_code, "last_error": row.last_error,
            "next_attempt": ts(row.next_attempt_at), "updated": ts(row.updated_at)}


def _strings(body: dict, key: str, allowed: set[str] | None = None) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise bad_request(f"'{key}' must be a list of non-empty strings.")
    if allowed is not None:
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise bad_request(f"Unknown {key}: {', '.join(unknown)}. Known: {', '.join(sorted(allowed))}.")
    return value


async def _checked_url(url) -> str:
    if not isinstance(url, str) or len(url) > 2000:
        raise bad_request("'url' must be a string of at most 2000 characters.")
    try:
        await asyncio.to_thread(webhooks.check_target, url)
    except webhooks.TargetRefused as exc:
        raise bad_request(f"Webhook target refused: {exc}")
    return url


SUBSCRIPTION = param("subscription", "subscription id")


class Subscriptions:
    SCHEMAS = {
        "EventType": obj({"type": STR, "topic": STR, "category": STR, "description": STR, "fingerprint": STR,
                          "schema": {"type": "object", "description": "the Avro schema"},
                          "versions": {"type": "array", "items": obj({"fingerprint": STR,
                                                                      "schema": {"type": "object"}})}}),
        "Subscription": obj({"id": STR, "url": STR, "event_types": {"type": "array", "items": STR},
                             "categories": {"type": "array", "items": STR},
                             "resource_ids": {"type": "array", "items": STR}, "enabled": BOOL,
                             "secret": {"type": "string", "description": "only in the answer that set it"},
                             "created": STR, "updated": STR}, ["id", "url", "enabled"]),
        "SubscriptionChange": obj({"url": STR, "event_types": {"type": "array", "items": STR},
                                   "categories": {"type": "array", "items": STR},
                                   "resource_ids": {"type": "array", "items": STR}, "enabled": BOOL,
                                   "secret": {"type": "string", "minLength": 16}}),
        "Delivery": obj({"id": STR, "event_id": STR, "event_type": STR, "resource_id": STR,
                         "attempts": {"type": "integer"}, "status": {"type": "string", "enum": [
                             "retrying", "delivered", "dead"]},
                         "last_status_code": {"type": ["integer", "null"]}, "last_error": STR,
                         "next_attempt": {"type": ["string", "null"]}, "updated": STR}),
    }
    PATHS = {
        f"{V}/event-types": {"get": op("public event types with their Avro schemas and fingerprints", 200,
                                       obj({"event_types": {"type": "array", "items": ref("EventType")},
                                            "categories": {"type": "array", "items": STR}}))},
        f"{V}/subscriptions": {
            "get": op("list webhook subscriptions", 200, listing("subscriptions", "Subscription")),
            "post": op("subscribe a URL to events", 200, wrapped("subscription", ref("Subscription")),
                       body=wrapped("subscription", ref("SubscriptionChange")))},
        f"{V}/subscriptions/{{subscription}}": {
            "get": op("show a subscription", 200, wrapped("subscription", ref("Subscription")), (SUBSCRIPTION,)),
            "patch": op("change a subscription", 200, wrapped("subscription", ref("Subscription")),
                        (SUBSCRIPTION,), body=wrapped("subscription", ref("SubscriptionChange"))),
            "delete": op("delete a subscription", 202, None, (SUBSCRIPTION,))},
        f"{V}/subscriptions/{{subscription}}/deliveries": {"get": op(
            "recent deliveries of a subscription", 200, listing("deliveries", "Delivery"), (SUBSCRIPTION,))},
    }

    def __init__(self, store):
        self.store = store

    async def event_types(self, request):
        return web.json_response({"event_types": catalog.describe(), "categories": catalog.CATEGORIES})

    async def _body(self, request) -> dict:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("subscription"), dict):
            raise bad_request("The request body needs an object 'subscription'.")
        sub = body["subscription"]
        unknown = sorted(set(sub) - FIELDS)
        if unknown:
            raise bad_request(f"Unknown subscription fields: {', '.join(unknown)}.")
        return sub

    async def _emit_changed(self, uow, row, project: str) -> None:
        await uow.emit(T.SUBSCRIPTION_EVENTS, Event("coffer.subscription.changed.v1", row.id, source=SOURCE,
                                                    project=project, data={
            "subscription_id": row.id, "project_id": row.project_id, "url": row.url,
            "event_types": json.loads(row.event_types), "categories": json.loads(row.categories),
            "resource_ids": json.loads(row.resource_ids), "enabled": bool(row.enabled),
            "sealed_secret": row.sealed_secret}))

    async def create(self, request):
        policy.authorize(request, "subscription:create")
        sub = await self._body(request)
        if "url" not in sub:
            raise bad_request("'url' is required.")
        url = await _checked_url(sub["url"])
        secret = sub.get("secret") or secrets.token_urlsafe(32)
        if not isinstance(secret, str) or len(secret) < 16:
            raise bad_request("'secret' must be a string of at least 16 characters.")
        enabled = sub.get("enabled", True)
        if not isinstance(enabled, bool):
            raise bad_request("'enabled' must be true or false.")
        values = dict(id=str(uuid.uuid4()), project_id=request["project"], url=url,
                      event_types=json.dumps(_strings(sub, "event_types", set(catalog.BY_TYPE))),
                      categories=json.dumps(_strings(sub, "categories", set(catalog.CATEGORIES))),
                      resource_ids=json.dumps(_strings(sub, "resource_ids")), enabled=int(enabled),
                      sealed_secret=webhooks.seal_secret(secret), created_at=now(), updated_at=now())
        async with self.store.uow() as uow:
            await uow.conn.execute(subscriptions.insert().values(**values))
            row = (await uow.conn.execute(select(subscriptions).where(subscriptions.c.id == values["id"]))).one()
            await self._emit_changed(uow, row, request["project"])
        return web.json_response({"subscription": view(row, secret=secret)})

    async def _row(self, conn, request):
        row = (await conn.execute(select(subscriptions).where(
            subscriptions.c.id == request.match_info["subscription"],
            subscriptions.c.project_id == request["project"]))).first()
        if row is None:
            raise not_found(f"Subscription {request.match_info['subscription']} could not be found.")
        return row

    async def list(self, request):
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(subscriptions).where(
                subscriptions.c.project_id == request["project"]).order_by(subscriptions.c.created_at))).all()
        return web.json_response({"subscriptions": [view(r) for r in rows]})

    async def show(self, request):
        async with self.store.engine.connect() as conn:
            row = await self._row(conn, request)
        return web.json_response({"subscription": view(row)})

    async def patch(self, request):
        policy.authorize(request, "subscription:update")
        sub = await self._body(request)
        values: dict = {}
        if "url" in sub:
            values["url"] = await _checked_url(sub["url"])
        if "event_types" in sub:
            values["event_types"] = json.dumps(_strings(sub, "event_types", set(catalog.BY_TYPE)))
        if "categories" in sub:
            values["categories"] = json.dumps(_strings(sub, "categories", set(catalog.CATEGORIES)))
        if "resource_ids" in sub:
            values["resource_ids"] = json.dumps(_strings(sub, "resource_ids"))
        if "enabled" in sub:
            if not isinstance(sub["enabled"], bool):
                raise bad_request("'enabled' must be true or false.")
            values["enabled"] = int(sub["enabled"])
        new_secret = None
        if "secret" in sub:
            new_secret = sub["secret"]
            if not isinstance(new_secret, str) or len(new_secret) < 16:
                raise bad_request("'secret' must be a string of at least 16 characters.")
            values["sealed_secret"] = webhooks.seal_secret(new_secret)
        async with self.store.uow() as uow:
            row = await self._row(uow.conn, request)
            if values:
                await uow.conn.execute(update(subscriptions).where(subscriptions.c.id == row.id)
                                       .values(updated_at=now(), **values))
                row = await self._row(uow.conn, request)
                await self._emit_changed(uow, row, request["project"])
        return web.json_response({"subscription": view(row, secret=new_secret)})

    async def delete(self, request):
        policy.authorize(request, "subscription:delete")
        async with self.store.uow() as uow:
            row = await self._row(uow.conn, request)
            await uow.conn.execute(delete(subscriptions).where(subscriptions.c.id == row.id))
            await uow.conn.execute(delete(deliveries).where(deliveries.c.subscription_id == row.id))
            await uow.emit(T.SUBSCRIPTION_EVENTS, Event("coffer.subscription.deleted.v1", row.id, source=SOURCE,
                                                        project=request["project"],
                                                        data={"subscription_id": row.id}))
        return accepted()

    async def list_deliveries(self, request):
        async with self.store.engine.connect() as conn:
            row = await self._row(conn, request)
            rows = (await conn.execute(select(deliveries).where(deliveries.c.subscription_id == row.id)
                                       .order_by(deliveries.c.updated_at.desc()).limit(200))).all()
        return web.json_response({"deliveries": [delivery_view(r) for r in rows]})

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/event-types", self.event_types)
        app.router.add_get(f"{prefix}/subscriptions", self.list)
        app.router.add_post(f"{prefix}/subscriptions", self.create)
        app.router.add_get(f"{prefix}/subscriptions/{{subscription}}", self.show)
        app.router.add_patch(f"{prefix}/subscriptions/{{subscription}}", self.patch)
        app.router.add_delete(f"{prefix}/subscriptions/{{subscription}}", self.delete)
        app.router.add_get(f"{prefix}/subscriptions/{{subscription}}/deliveries", self.list_deliveries)
