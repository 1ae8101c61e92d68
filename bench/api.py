"""API latency and throughput: GET /instances (1,000 instances in the project, rows
inserted straight into the API's database) and GET /instances/{id}, at 1, 10 and
100 concurrent clients, against the real API process (auth, policy, rate limiter,
database, tracing, metrics) next to a bare aiohttp handler returning the same JSON
in another process of the same run; then the cost of Keystone mode with a warm
token cache (a real Keystone, tests/keystone.py) on the same requests.
Run with the project's venv: .venv/bin/python bench/api.py [seconds per measurement]"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from coffer.stack import Stack  # noqa: E402
from plumbing import broker  # noqa: E402
from plumbing.lifetime import die_with_parent  # noqa: E402

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "--bare" else 4.0
INSTANCES = 1000
CONCURRENCY = (1, 10, 100)
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- the bare baseline: same JSON, nothing else ------------------------------------------
def serve_bare(port: int, documents: str) -> None:
    docs = json.loads(Path(documents).read_text())

    async def listing(_request):
        return web.json_response(docs["list"])

    async def show(_request):
        return web.json_response(docs["show"])

    app = web.Application()
    app.router.add_get("/v1.0/{project}/instances", listing)
    app.router.add_get("/v1.0/{project}/instances/{instance}", show)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# -- load -------------------------------------------------------------------------------------
async def measure(url: str, headers: dict, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        async with session.get(url) as warm:  # the connection and any cache warm
            assert warm.status == 200, await warm.text()

        async def client():
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)
        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    return {"p50": pct(latencies, 0.5) * 1000, "p99": pct(latencies, 0.99) * 1000, "rps": len(latencies) / elapsed}


def row(label: str, api: dict, bare: dict | None) -> str:
    text = f"{label:<34} p50 {api['p50']:7.2f} ms  p99 {api['p99']:7.2f} ms  {api['rps']:7.0f} req/s"
    if bare:
        text += (f"   | bare p50 {bare['p50']:6.2f}  p99 {bare['p99']:6.2f}  {bare['rps']:7.0f} req/s"
                 f"   | p99 ratio {api['p99'] / bare['p99']:5.2f}x")
    return text


# -- set-up -------------------------------------------------------------------------------------
def database_url(run: str) -> tuple[str, callable]:
    """A fresh PostgreSQL database for the API when one is reachable, else SQLite."""
    try:
        import psycopg
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "coffer_bench_{run}"')

        def drop():
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "coffer_bench_{run}" WITH (FORCE)')
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/coffer_bench_{run}", drop
    except Exception:
        return "", lambda: None


async def seed(url: str, project: str) -> tuple[str, str]:
    """A member token and INSTANCES instance rows (ACTIVE, HEALTHY) for `project`."""
    from plumbing.db import create_schema, make_engine
    from services.api.auth import create_token
    from services.api.tables import instances, metadata
    engine = make_engine(url)
    await create_schema(engine, metadata)
    base = datetime.now(timezone.utc)
    rows = [dict(id=str(uuid.uuid4()), project_id=project, name=f"bench-{i:04d}", status="ACTIVE",
                 operating_status="HEALTHY", flavor_id="d1", volume_gb=1, datastore="postgresql",
                 datastore_version="15", datastore_version_number="15.19", address=f"127.10.{i // 250}.{i % 250 + 2}",
                 host="host1", zone="az1", created_at=base + timedelta(seconds=i), updated_at=base)
            for i in range(INSTANCES)]
    async with engine.begin() as conn:
        token = await create_token(conn, project, "member")
        await conn.execute(instances.insert(), rows)
    await engine.dispose()
    return token, rows[INSTANCES // 2]["id"]


def start_api(stack: Stack, name: str, port: int, extra: dict) -> subprocess.Popen:
    log = open(stack.home / "logs" / f"{name}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "services.api"],
                            env={**stack.env(), "COFFER_API_PORT": str(port), **extra}, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent, cwd=ROOT)


def wait_answering(url: str, headers: dict, timeout: float = 90) -> None:
    import requests
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def main() -> None:
    run = uuid.uuid4().hex[:8]
    home = Path(tempfile.mkdtemp(prefix=f"coffer-bench-api-{run}-", dir="/tmp"))
    url, drop_database = database_url(run)
    url = url or f"sqlite+aiosqlite:///{home / 'api.db'}"
    from tests.keystone import start_keystone
    keystone = start_keystone()
    try:
        await bench(home, url, run, keystone)
    finally:
        keystone.stop()
        shutil.rmtree(keystone.directory, ignore_errors=True)
        drop_database()
        shutil.rmtree(home, ignore_errors=True)


async def bench(home: Path, url: str, run: str, keystone) -> None:
    keystone.user("coffer", "coffer-secret", keystone.project("service"), ["service", "admin"])
    project = keystone.project(f"bench-{run}")  # the same project id in both identity modes
    keystone.user("bencher", "bench-secret", project, ["member"])
    token, some_id = await seed(url, project)
    stack = Stack(home=home, api_port=broker.free_port(), extra_env={
        "COFFER_API_DATABASE_URL": url, "COFFER_KAFKA_GROUP_SUFFIX": f"-bench-{run}",
        "COFFER_RATE_LIMIT_PER_MINUTE": "10000000"})  # measured: the limiter runs, never refuses
    procs: list[subprocess.Popen] = []
    try:
        stack.start(services=["api"])
        headers = {"X-Auth-Token": token}
        paths = {"GET /instances": f"/v1.0/{project}/instances",
                 "GET /instances/{id}": f"/v1.0/{project}/instances/{some_id}"}
        wait_answering(stack.api_url + paths["GET /instances"], headers)
        import requests
        documents = {"list": requests.get(stack.api_url + paths["GET /instances"], headers=headers, timeout=10).json(),
                     "show": requests.get(stack.api_url + paths["GET /instances/{id}"], headers=headers,
                                          timeout=10).json()}
        assert len(documents["list"]["instances"]) == 20 and documents["list"]["links"][0]["rel"] == "next"
        (home / "documents.json").write_text(json.dumps(documents))
        bare_port = broker.free_port()
        procs.append(subprocess.Popen([sys.executable, __file__, "--bare", str(bare_port), str(home / "documents.json")],
                                      preexec_fn=die_with_parent))
        bare_url = f"http://127.0.0.1:{bare_port}"
        wait_answering(bare_url + paths["GET /instances"], {})

        print(f"API database: {url.split('://')[0]}; {INSTANCES} instances in the project; "
              f"{SECONDS:.0f} s per measurement; {os.cpu_count()} cores")
        results = {}
        for label, path in paths.items():
            for clients in CONCURRENCY:
                bare = await measure(bare_url + path, {}, clients, SECONDS)
                api = await measure(stack.api_url + path, headers, clients, SECONDS)
                results[(label, clients)] = api
                print(row(f"{label}, {clients:>3} client(s)", api, bare), flush=True)

        # Keystone mode, warm cache: a second API process on the same database
        ks_token = keystone.token("bencher", "bench-secret", f"bench-{run}")
        ks_port = broker.free_port()
        procs.append(start_api(stack, "api-keystone", ks_port, {
            "COFFER_AUTH": "keystone", "COFFER_KEYSTONE_URL": keystone.url, "COFFER_KEYSTONE_USERNAME": "coffer",
            "COFFER_KEYSTONE_PASSWORD": "coffer-secret", "COFFER_KEYSTONE_REGISTER": "false"}))
        ks_url = f"http://127.0.0.1:{ks_port}"
        ks_headers = {"X-Auth-Token": ks_token}
        wait_answering(ks_url + paths["GET /instances"], ks_headers)
        print("Keystone mode, warm token cache (vs built-in tokens above):")
        for clients in (1, 10):
            api = await measure(ks_url + paths["GET /instances/{id}"], ks_headers, clients, SECONDS)
            builtin = results[("GET /instances/{id}", clients)]
            print(row(f"GET /instances/{{id}}, {clients:>3} client(s)", api, None)
                  + f"   | overhead p50 {api['p50'] - builtin['p50']:+.2f} ms, p99 {api['p99'] - builtin['p99']:+.2f} ms")
        print(f"Keystone saw {keystone.requests_seen('GET', '/auth/tokens')} token validation(s) in all that")
        await validation_cost(keystone, url, token, ks_token, f"bench-{run}")
    finally:
        for proc in procs:
            stop(proc)
        stack.stop(stop_instances=False)


async def validation_cost(keystone, url: str, builtin_token: str, ks_token: str, project_name: str,
                          calls: int = 20000) -> None:
    """Token validation alone, in-process: a warm cache in each mode, and Keystone's
    answer for tokens the cache has not seen."""
    from plumbing.db import make_engine
    from plumbing.outbox import Store
    from services.api.auth import BuiltinTokens
    from services.api.keystone import KeystoneSettings, KeystoneTokens
    from services.api.tables import metadata
    engine = make_engine(url)
    builtin = BuiltinTokens(Store(engine, metadata, "api"))
    ks = KeystoneTokens(KeystoneSettings(url=keystone.url, username="coffer", password="coffer-secret",
                                         project="service", register=False))
    await ks.start()
    try:
        figures = {}
        for name, validator, token in (("built-in", builtin, builtin_token), ("keystone", ks, ks_token)):
            assert await validator.identify(token) is not None  # warm
            began = time.perf_counter()
            for _ in range(calls):
                await validator.identify(token)
            figures[name] = (time.perf_counter() - began) / calls * 1e6
        fresh = [keystone.token("bencher", "bench-secret", project_name) for _ in range(20)]
        began = time.perf_counter()
        for token in fresh:
            assert await ks.identify(token) is not None
        cold = (time.perf_counter() - began) / len(fresh) * 1000
        print(f"token validation, warm cache: built-in {figures['built-in']:.2f} us, keystone {figures['keystone']:.2f} us"
              f" per request; a token not yet cached: {cold:.1f} ms (one Keystone round trip)")
    finally:
        await ks.close()
        await engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        serve_bare(int(sys.argv[2]), sys.argv[3])
    else:
        asyncio.run(main())
