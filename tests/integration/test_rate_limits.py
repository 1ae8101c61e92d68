"""Rate limits per project: an API built with a low limit (the test stack's is far
above what tests send), served by aiohttp over a real socket, with its own SQLite
database. Past the limit: Trove's 413 overLimit body with details and retryAfter,
and a Retry-After header; other projects and other verbs are not affected."""
from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from opentelemetry import trace

from plumbing.db import create_schema, make_engine
from plumbing.outbox import Store
from services.api import ratelimit
from services.api.auth import create_token
from services.api.http import build_app
from services.api.tables import metadata


@pytest.fixture
async def api(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'api.db'}")
    await create_schema(engine, metadata)
    async with engine.begin() as conn:
        tokens = {p: await create_token(conn, p, "member") for p in ("limited", "other")}
    app = build_app(Store(engine, metadata, "api"), trace.get_tracer("test"),
                    rate_limiter=ratelimit.RateLimiter(ratelimit.default_limits(3)))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession(str(server.make_url(""))) as session:
        yield session, tokens
    await server.close()
    await engine.dispose()


async def test_past_the_limit_a_project_gets_413_with_retry_after(api):
    session, tokens = api
    headers = {"X-Auth-Token": tokens["limited"]}
    for _ in range(3):
        async with session.get("/v1.0/limited/flavors", headers=headers) as answer:
            assert answer.status == 200
    async with session.get("/v1.0/limited/flavors", headers=headers) as answer:
        assert answer.status == 413
        assert answer.headers["Retry-After"] == "20"
        body = await answer.json()
    assert body == {"overLimit": {"code": 413, "message": "This request was rate-limited.", "retryAfter": "20",
                                  "details": "Only 3 GET request(s) can be made to * every minute."}}
    async with session.get("/v1.0/other/flavors", headers={"X-Auth-Token": tokens["other"]}) as answer:
        assert answer.status == 200  # another project has its own budget
    async with session.post("/v1.0/limited/subscriptions", headers=headers, json={"subscription": {}}) as answer:
        assert answer.status == 400  # POSTs have their own budget: this one reaches the handler


async def test_limits_show_the_rate_limits_and_what_remains(api):
    session, tokens = api
    async with session.get("/v1.0/limited/limits", headers={"X-Auth-Token": tokens["limited"]}) as answer:
        limits = (await answer.json())["limits"]
    assert limits[0]["verb"] == "ABSOLUTE"
    rates = {(r["verb"], r["uri"]): r for r in limits[1:]}
    assert rates[("GET", "*")]["value"] == 3 and rates[("GET", "*")]["remaining"] == 2  # this request counted
    assert rates[("POST", "*/mgmt")]["regex"] == "^/mgmt"
