"""A malformed record on a consumed topic lands in the dead-letter topic, with the
error, and the services keep consuming."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from plumbing import topics as T
from tests.conftest import trove
from tests.e2e.support import installed_pg_version, wait_active, wait_gone

pytestmark = pytest.mark.e2e


async def _poison_and_find(bootstrap: str, key: bytes) -> dict[str, dict[str, str]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    await producer.send_and_wait(T.INSTANCE_REQUESTS, b"\x00not avro at all", key=key,
                                 headers=[("ce_type", b"coffer.instance.create_requested.v1")])
    await producer.send_and_wait(T.INSTANCE_REQUESTS, b"no headers either", key=key)
    await producer.stop()
    consumer = AIOKafkaConsumer(T.DEAD_LETTER, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=None)
    await consumer.start()
    found: dict[str, dict[str, str]] = {}
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    if r.key == key:
                        h = {k: v.decode() for k, v in r.headers}
                        found[f"{h['coffer_dlq_group']}:{h['coffer_dlq_offset']}"] = h
            groups = {h["coffer_dlq_group"] for h in found.values()}
            if len(found) >= 4 and any("provisioner" in g for g in groups) and any("scheduler" in g for g in groups):
                break
    finally:
        await consumer.stop()
    return found


def test_malformed_records_are_dead_lettered_and_consumption_goes_on(stack):
    key = f"poison-{uuid.uuid4()}".encode()
    found = asyncio.run(_poison_and_find(stack.bootstrap, key))
    groups = {h["coffer_dlq_group"] for h in found.values()}
    assert any(g.startswith("coffer-provisioner") for g in groups), found
    assert any(g.startswith("coffer-scheduler") for g in groups), found
    assert all(h["coffer_dlq_topic"] == T.INSTANCE_REQUESTS for h in found.values())
    assert any("decode" in h["coffer_dlq_error"] for h in found.values())

    # the same consumers still handle the next real request
    client = trove(stack)
    inst = client.instances.create("after-poison", "d1", volume={"size": 1}, datastore="postgresql",
                                   datastore_version=installed_pg_version())
    wait_active(client, inst.id)
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)
