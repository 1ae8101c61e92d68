"""Every mutating request leaves an audit event on coffer.audit.events (who, what,
when, outcome), denied ones too; reads leave none, and no secret from a request
body reaches the topic."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import requests
from aiokafka import AIOKafkaConsumer

from plumbing import topics as T
from plumbing.codec import registry
from plumbing.envelope import Event

pytestmark = pytest.mark.e2e


async def audit_events(bootstrap: str, wanted: set[str], timeout: float = 60) -> dict[str, Event]:
    """request id -> its audit event, for the `wanted` request ids, with the raw record bytes."""
    consumer = AIOKafkaConsumer(T.AUDIT_EVENTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=None)
    await consumer.start()
    found, deadline = {}, time.monotonic() + timeout
    try:
        while set(found) < wanted and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    event = Event.from_headers(r.headers, registry().decode("coffer.audit.request.v1", r.value))
                    event.raw = r.value + b"".join(v for _k, v in r.headers)
                    found[event.data["request_id"]] = event
    finally:
        await consumer.stop()
    return {k: v for k, v in found.items() if k in wanted}


def test_mutating_requests_are_audited_with_who_what_when_and_outcome(stack):
    from coffer.cli import _create_token
    reader = asyncio.run(_create_token(stack.project, "reader"))
    base = f"{stack.api_url}/v1.0/{stack.project}"
    secret = f"audit-secret-{uuid.uuid4().hex}"
    created = requests.post(f"{base}/subscriptions", headers={"X-Auth-Token": stack.member_token}, timeout=10,
                            json={"subscription": {"url": "http://127.0.0.1:9/audit", "secret": secret}})
    assert created.status_code == 200
    denied = requests.delete(f"{base}/instances/{uuid.uuid4()}", headers={"X-Auth-Token": reader}, timeout=10)
    assert denied.status_code == 403
    anonymous = requests.post(f"{base}/instances", json={"instance": {}}, timeout=10)
    assert anonymous.status_code == 401
    action = requests.post(f"{base}/instances/{uuid.uuid4()}/action", json={"restart": {}}, timeout=10,
                           headers={"X-Auth-Token": stack.member_token})
    assert action.status_code == 404
    read = requests.get(f"{base}/flavors", headers={"X-Auth-Token": stack.member_token}, timeout=10)
    ids = {name: r.headers["x-openstack-request-id"]
           for name, r in (("created", created), ("denied", denied), ("anonymous", anonymous), ("action", action),
                           ("read", read))}
    events = asyncio.run(audit_events(stack.bootstrap, set(ids.values())))
    assert ids["read"] not in events  # reads are not audited
    ok = events[ids["created"]]
    assert ok.type == "coffer.audit.request.v1" and ok.subject == stack.project and ok.project == stack.project
    assert ok.data["method"] == "POST" and ok.data["route"] == "/v1.0/{project}/subscriptions"
    assert ok.data["status"] == 200 and ok.data["outcome"] == "success"
    assert ok.data["user_id"].startswith("token-") and "member" in ok.data["roles"]
    assert ok.data["requested_at"] and ok.data["remote_address"] == "127.0.0.1"
    no = events[ids["denied"]]
    assert (no.data["status"], no.data["outcome"], no.data["roles"]) == (403, "failure", ["reader"])
    assert no.data["resource_ids"] == {"instance": denied.url.rsplit("/", 1)[-1]}
    assert (events[ids["anonymous"]].data["user_id"], events[ids["anonymous"]].data["status"]) == ("", 401)
    assert events[ids["action"]].data["action"] == "restart"
    assert all(secret.encode() not in e.raw for e in events.values())
