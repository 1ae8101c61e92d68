"""Pure logic of the API's policy table and rate limiter."""
from __future__ import annotations

import json

import pytest

from services.api import policy, ratelimit
from services.api.identity import Identity, with_implied


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_roles_imply_the_weaker_ones_and_the_strongest_is_the_role():
    assert with_implied(["admin"]) == {"admin", "member", "reader"}
    assert Identity("p", "u", with_implied(["member"])).role == "member"
    assert Identity("p", "u", frozenset({"service"})).role == ""


def test_default_rules_follow_trove():
    reader, member, admin = with_implied(["reader"]), with_implied(["member"]), with_implied(["admin"])
    assert policy.allowed(reader, "instance:index") and not policy.allowed(reader, "instance:create")
    assert not policy.allowed(reader, "api:write") and policy.allowed(member, "api:write")
    assert not policy.allowed(member, "instance:reset_status") and policy.allowed(admin, "instance:reset_status")
    assert not policy.allowed(member, "mgmt:instance:index") and policy.allowed(admin, "context_is_admin")
    assert not policy.allowed(reader, "a:rule:nobody:listed")  # unlisted: writers only
    assert not policy.allowed(frozenset({"service"}), "api:read")


def test_an_operator_file_overrides_defaults_and_typos_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"instance:delete": ["admin"]}))
    monkeypatch.setenv("COFFER_POLICY_FILE", str(path))
    policy.rules.cache_clear()
    try:
        assert not policy.allowed(with_implied(["member"]), "instance:delete")
        assert policy.allowed(with_implied(["member"]), "instance:create")
        path.write_text(json.dumps({"instance:delet": ["admin"]}))
        policy.rules.cache_clear()
        with pytest.raises(ValueError, match="unknown policy rule 'instance:delet'"):
            policy.rules()
    finally:
        monkeypatch.delenv("COFFER_POLICY_FILE")
        policy.rules.cache_clear()
    assert policy.defaults_document()["instance:delete"] == ["admin", "member"]


def test_the_limiter_allows_a_burst_then_says_how_long_to_wait():
    clock = Clock()
    limiter = ratelimit.RateLimiter(ratelimit.default_limits(3), clock)
    assert [limiter.check("p", "GET", "/instances") for _ in range(3)] == [None] * 3
    wait, limit = limiter.check("p", "GET", "/instances")
    assert wait == 20 and limit.verb == "GET"  # 3 a minute: one every 20 s
    assert limiter.check("other", "GET", "/instances") is None  # per project
    assert limiter.check("p", "POST", "/instances") is None     # per verb
    clock.now += 20
    assert limiter.check("p", "GET", "/instances") is None
    assert limiter.check("p", "GET", "/instances") is not None


def test_mgmt_posts_count_against_both_their_limits_and_status_shows_what_remains():
    clock = Clock()
    limiter = ratelimit.RateLimiter(ratelimit.default_limits(2), clock)
    limiter.check("p", "POST", "/mgmt/instances/x/action")
    status = {(s["verb"], s["uri"]): s for s in limiter.status("p")}
    assert status[("POST", "*")]["remaining"] == 1 and status[("POST", "*/mgmt")]["remaining"] == 1
    assert status[("GET", "*")]["remaining"] == 2 and status[("GET", "*")]["unit"] == "MINUTE"
    assert status[("GET", "*")]["nextAvailable"].endswith("Z")


def test_zero_turns_limiting_off():
    limiter = ratelimit.RateLimiter(ratelimit.default_limits(0))
    assert all(limiter.check("p", "GET", "/x") is None for _ in range(1000)) and limiter.status("p") == []
