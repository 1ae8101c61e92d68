"""What integrators and operators rely on: every record of an instance's creation is
keyed by the instance, carries the CloudEvents headers and one W3C trace, and no
password appears on the bus or in any log."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from plumbing import topics as T
from plumbing.codec import registry
from tests.conftest import trove
from tests.e2e.support import installed_pg_version, topic_records, wait_active, wait_gone

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def created(stack):
    client = trove(stack)
    password = f"Pw-{uuid.uuid4().hex}"
    inst = client.instances.create("contract", "d1", volume={"size": 1}, datastore="postgresql",
                                   datastore_version=installed_pg_version(), databases=[{"name": "db"}],
                                   users=[{"name": "owner", "password": password, "databases": [{"name": "db"}]}])
    wait_active(client, inst.id)
    instance_dir = stack.home / "instances" / inst.id
    logs = {p: p.read_bytes() for p in list((stack.home / "logs").glob("*.log")) + list(instance_dir.glob("*.log"))}
    records = asyncio.run(topic_records(stack.bootstrap, *T.ALL))
    yield inst.id, password, records, logs
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)


def test_no_password_on_the_bus_or_in_logs(created):
    _id, password, records, logs = created
    secret = password.encode()
    assert records and logs
    for r in records:
        assert secret not in (r.value or b"") and all(secret not in v for _k, v in r.headers), r.topic
    for path, text in logs.items():
        assert secret not in text, f"password found in {path}"


def test_records_of_a_create_are_keyed_cloudevents_in_one_trace(created):
    instance_id, _pw, records, _logs = created
    mine = [r for r in records if r.key == instance_id.encode() and r.topic != T.TELEMETRY]
    types = [dict(r.headers)["ce_type"].decode() for r in sorted(mine, key=lambda r: r.timestamp)]
    for expected in ("coffer.instance.create_requested.v1", "coffer.placement.placed.v1",
                     "coffer.agent.registered.v1", "coffer.agent.prepare.v1", "coffer.instance.active.v1"):
        assert expected in types
    trace_ids = set()
    for r in mine:
        h = {k: v.decode() for k, v in r.headers}
        assert h["ce_specversion"] == "1.0" and h["content-type"] == "application/avro"
        assert h["ce_subject"] == instance_id and uuid.UUID(h["ce_id"])
        registry().decode(h["ce_type"], r.value)  # every value decodes with its schema
        if h["ce_source"] != "monitor":  # health follows heartbeats, not the request
            trace_ids.add(h["traceparent"].split("-")[1])
    # the API request's trace runs through scheduler, provisioner and agent to ACTIVE
    assert len(trace_ids) == 1, trace_ids
