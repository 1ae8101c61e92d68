"""Who gets an event, when a failed delivery is tried again, and which targets are refused."""
from __future__ import annotations

import random
import socket

import pytest

from plumbing import webhooks
from services.notifier import rules

SUB = rules.Subscription("s1", "p1", (), (), (), True)


def test_only_the_subscribers_project_and_filters_match():
    assert rules.matches(SUB, "p1", "coffer.instance.active.v1", "creation", "i1")
    assert not rules.matches(SUB, "p2", "coffer.instance.active.v1", "creation", "i1")
    assert not rules.matches(SUB, "", "coffer.instance.active.v1", "creation", "i1")
    disabled = rules.Subscription("s1", "p1", (), (), (), False)
    assert not rules.matches(disabled, "p1", "coffer.instance.active.v1", "creation", "i1")
    typed = rules.Subscription("s1", "p1", ("coffer.instance.deleted.v1",), (), (), True)
    assert not rules.matches(typed, "p1", "coffer.instance.active.v1", "creation", "i1")
    by_category = rules.Subscription("s1", "p1", (), ("failure",), (), True)
    assert rules.matches(by_category, "p1", "coffer.instance.failed.v1", "failure", "i1")
    assert not rules.matches(by_category, "p1", "coffer.instance.active.v1", "creation", "i1")
    by_resource = rules.Subscription("s1", "p1", (), (), ("i2",), True)
    assert not rules.matches(by_resource, "p1", "coffer.instance.active.v1", "creation", "i1")


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rand = random.Random(7)
    delays = [rules.retry_delay(n, rand) for n in range(1, 12)]
    for n, d in enumerate(delays, start=1):
        full = min(rules.RETRY_CAP_SECONDS, rules.RETRY_BASE_SECONDS * 2 ** (n - 1))
        assert full / 2 <= d <= full
    assert max(delays) <= rules.RETRY_CAP_SECONDS


def test_a_delivery_dies_after_the_last_attempt():
    assert rules.outcome(1, ok=True) == "delivered"
    assert rules.outcome(1, ok=False) == "retrying"
    assert rules.outcome(rules.MAX_ATTEMPTS, ok=False) == "dead"


def fake_resolver(address):
    return lambda host, port, type=None: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


@pytest.mark.parametrize("address, allowed_env, refused", [
    ("93.184.216.34", {}, False),
    ("127.0.0.1", {}, True),
    ("127.0.0.1", {"COFFER_WEBHOOKS_ALLOW_LOOPBACK": "true"}, False),
    ("10.0.0.5", {}, True),
    ("192.168.1.9", {"COFFER_WEBHOOKS_ALLOW_PRIVATE": "true"}, False),
    ("169.254.169.254", {"COFFER_WEBHOOKS_ALLOW_LOOPBACK": "true", "COFFER_WEBHOOKS_ALLOW_PRIVATE": "true"}, True),
])
def test_targets(monkeypatch, address, allowed_env, refused):
    for name in ("COFFER_WEBHOOKS_ALLOW_LOOPBACK", "COFFER_WEBHOOKS_ALLOW_PRIVATE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in allowed_env.items():
        monkeypatch.setenv(name, value)
    check = lambda: webhooks.check_target("https://hooks.example/x", resolve=fake_resolver(address))  # noqa: E731
    if refused:
        with pytest.raises(webhooks.TargetRefused):
            check()
    else:
        assert check() == [address]


def test_signature_verifies_and_rejects_tampering_and_staleness():
    header = webhooks.signature("s3cret-s3cret-s3cret", 1_700_000_000, b'{"a":1}')
    assert webhooks.verify("s3cret-s3cret-s3cret", header, b'{"a":1}', now=1_700_000_010)
    assert not webhooks.verify("s3cret-s3cret-s3cret", header, b'{"a":2}', now=1_700_000_010)
    assert not webhooks.verify("other-secret-other", header, b'{"a":1}', now=1_700_000_010)
    assert not webhooks.verify("s3cret-s3cret-s3cret", header, b'{"a":1}', now=1_700_001_000)
