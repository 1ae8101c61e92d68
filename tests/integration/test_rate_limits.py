"""Rate limits per project: an API built with a low limit (the test stack's is far
above what tests send), served in-process (tests/integration/conftest.py). Past
the limit: Trove's 413 overLimit body with details and retryAfter, and a
Retry-After header; other projects and other verbs are not affected."""
from __future__ import annotations

import pytest

from services.api import ratelimit


@pytest.fixture
async def api(inprocess_api):
    async with inprocess_api(ratelimit.RateLimiter(ratelimit.default_limits(3))) as served:
        yield served.session, {p: await served.token(p) for p in ("limited", "other")}


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
