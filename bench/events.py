"""Webhook delivery throughput and latency: N public events through the notifier to
a local receiver (signed, one subscription), next to raw aiokafka consume + Avro
decode of the same records in the same run.
Run with the project's venv: .venv/bin/python bench/events.py [N]"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from coffer.cli import _create_token  # noqa: E402
from coffer.stack import Stack  # noqa: E402
from plumbing import broker  # noqa: E402
from plumbing import topics as T  # noqa: E402
from plumbing.codec import registry  # noqa: E402
from plumbing.envelope import Event  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
RESOURCES = 50


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def produce(bootstrap: str, project: str) -> dict[str, float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    sent: dict[str, float] = {}
    futures = []
    for i in range(N):
        subject = f"bench-instance-{i % RESOURCES}"
        event = Event("coffer.health.changed.v1", subject, source="bench", project=project, data={
            "instance_id": subject, "status": "HEALTHY" if i % 2 else "UNHEALTHY", "category": "availability",
            "reason": "", "observed_at": int(time.time() * 1000)})
        sent[event.id] = time.perf_counter()
        futures.append(await producer.send(T.HEALTH_EVENTS, registry().encode(event.type, event.data),
                                           key=subject.encode(), headers=event.headers()))
    await asyncio.gather(*futures)
    await producer.stop()
    return sent


async def raw_consume(bootstrap: str) -> float:
    """Raw floor: consume + decode the same records, no Coffer."""
    consumer = AIOKafkaConsumer(T.HEALTH_EVENTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=None, fetch_max_wait_ms=20)
    await consumer.start()
    seen, started = 0, time.perf_counter()
    try:
        while seen < N:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    registry().decode(dict(r.headers)["ce_type"].decode(), r.value)
                    seen += 1
    finally:
        await consumer.stop()
    return N / (time.perf_counter() - started)


async def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="coffer-bench-events-", dir="/tmp"))
    os.environ["COFFER_HOME"] = str(home)
    stack = Stack(home=home, api_port=broker.free_port(),
                  extra_env={"COFFER_HOME": str(home), "COFFER_WEBHOOKS_ALLOW_LOOPBACK": "true"})
    received: dict[str, float] = {}
    done = asyncio.Event()

    async def hook(request: web.Request):
        body = await request.read()
        received.setdefault(json.loads(body)["id"], time.perf_counter())
        if len(received) >= N:
            done.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = broker.free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        stack.start(services=["api", "notifier"])
        token = await _create_token("bench", "member")
        await asyncio.to_thread(stack.wait_ready_api, token, "bench")
        r = await asyncio.to_thread(requests.post, f"{stack.api_url}/v1.0/bench/subscriptions",
                                    headers={"X-Auth-Token": token},
                                    json={"subscription": {"url": f"http://127.0.0.1:{port}/hook",
                                                           "secret": "bench-secret-0123456789"}})
        r.raise_for_status()
        await asyncio.sleep(2)  # the notifier has learnt the subscription
        started = time.perf_counter()
        sent = await produce(stack.bootstrap, "bench")
        await asyncio.wait_for(done.wait(), 600)
        elapsed = time.perf_counter() - started
        raw_rate = await raw_consume(stack.bootstrap)
    finally:
        await runner.cleanup()
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)

    latencies = [received[i] - sent[i] for i in sent if i in received]
    rate = N / elapsed
    print(f"\n{N} events over {RESOURCES} resources, one signed webhook subscription, {os.cpu_count()} CPUs")
    print(f"raw aiokafka consume + decode     {raw_rate:9.0f} events/s   (baseline)")
    print(f"coffer produce → webhook received {rate:9.0f} events/s   {rate / raw_rate:6.3f}x raw")
    print(f"event → webhook latency           p50 {statistics.median(latencies) * 1000:7.1f} ms   "
          f"p99 {p(latencies, 0.99) * 1000:7.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
