"""Webhook subscriptions end to end: a real HTTP receiver on loopback gets signed
CloudEvents for an instance's life, in order, with retries after a 500; another
project's subscription sees nothing of it."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time

import pytest
import requests
from aiohttp import web

from plumbing import broker
from plumbing.codec import registry
from tests.conftest import trove, wait_for
from tests.e2e.support import installed_pg_version, wait_active, wait_gone

pytestmark = pytest.mark.e2e


class Receiver:
    """A webhook receiver in a thread; answers 500 to the first `fail_first` calls of a path."""

    def __init__(self, fail_first: dict[str, int], redirect: set[str] = frozenset()):
        self.port = broker.free_port()
        self.redirect = redirect
        self.calls: list[dict] = []
        self.fail_first = dict(fail_first)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        self._ready.wait(10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request):
        body = await request.read()
        if request.path in self.redirect:
            self.calls.append({"path": request.path, "headers": dict(request.headers), "body": body,
                               "answered": 302})
            raise web.HTTPFound(location=self.url("/redirected"))
        failing = self.fail_first.get(request.path, 0) > 0
        if failing:
            self.fail_first[request.path] -= 1
        self.calls.append({"path": request.path, "headers": dict(request.headers), "body": body,
                           "answered": 500 if failing else 204})
        return web.Response(status=500 if failing else 204)

    def _serve(self):
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def events(self, path: str, accepted_only: bool = True) -> list[dict]:
        return [json.loads(c["body"]) for c in self.calls
                if c["path"] == path and (c["answered"] == 204 or not accepted_only)]


def api(stack, token: str, project: str):
    base = f"{stack.api_url}/v1.0/{project}"

    def call(method, path, **kw):
        return requests.request(method, base + path, headers={"X-Auth-Token": token}, timeout=10, **kw)
    return call


@pytest.fixture(scope="module")
def other_project(stack):
    from coffer.cli import _create_token
    project = f"{stack.project}-other"
    return project, asyncio.run(_create_token(project, "member"))


def test_event_types_are_served_with_their_schemas(stack):
    doc = api(stack, stack.member_token, stack.project)("GET", "/event-types").json()
    by_type = {e["type"]: e for e in doc["event_types"]}
    assert "coffer.instance.active.v1" in by_type and "coffer.telemetry.heartbeat.v1" in by_type
    for type_, entry in by_type.items():
        assert entry["fingerprint"] == registry().current[type_].fingerprint.hex()
        assert entry["schema"]["type"] == "record"
        assert entry["fingerprint"] in {v["fingerprint"] for v in entry["versions"]}


def test_signed_ordered_deliveries_with_retries_and_isolation(stack, other_project):
    secret = "an-integrators-secret-0123456789"
    receiver = Receiver(fail_first={"/mine": 1})
    mine = api(stack, stack.member_token, stack.project)
    created = mine("POST", "/subscriptions", json={"subscription": {
        "url": receiver.url("/mine"), "categories": ["creation", "deletion"], "secret": secret}})
    assert created.status_code == 200, created.text
    sub = created.json()["subscription"]
    assert sub["secret"] == secret and "secret" not in mine("GET", f"/subscriptions/{sub['id']}").json()["subscription"]

    other_name, other_token = other_project
    theirs = api(stack, other_token, other_name)
    assert theirs("POST", "/subscriptions", json={"subscription": {"url": receiver.url("/theirs")}}).status_code == 200
    # a project cannot see or touch another's subscription
    assert theirs("GET", f"/subscriptions/{sub['id']}").status_code == 404
    assert theirs("DELETE", f"/subscriptions/{sub['id']}").status_code == 404

    client = trove(stack)
    inst = client.instances.create("hooked", "d1", volume={"size": 1}, datastore="postgresql",
                                   datastore_version=installed_pg_version())
    wait_active(client, inst.id)
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)

    wanted = ["coffer.instance.provisioning.v1", "coffer.instance.active.v1", "coffer.instance.deleted.v1"]

    def delivered():
        got = [e["type"] for e in receiver.events("/mine") if e["subject"] == inst.id]
        return got if got == wanted else None
    wait_for(delivered, 30, interval=0.1, what="the three lifecycle events in order")

    # the first call was answered 500 and the same event came again
    first = receiver.calls[[c["path"] for c in receiver.calls].index("/mine")]
    assert first["answered"] == 500
    retried_id = json.loads(first["body"])["id"]
    assert retried_id in {e["id"] for e in receiver.events("/mine")}

    for call in (c for c in receiver.calls if c["path"] == "/mine"):
        header = call["headers"]["Coffer-Signature"]
        fields = dict(part.split("=", 1) for part in header.split(","))
        expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + call["body"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(fields["v1"], expected)
        assert abs(int(fields["t"]) - time.time()) < 120
        assert call["headers"]["Content-Type"].startswith("application/cloudevents+json")
        event = json.loads(call["body"])
        assert event["specversion"] == "1.0" and event["cofferproject"] == stack.project

    assert not [c for c in receiver.calls if c["path"] == "/theirs" and inst.id in c["body"].decode()]

    def retried_delivery():
        rows = mine("GET", f"/subscriptions/{sub['id']}/deliveries").json()["deliveries"]
        return [d for d in rows if d["event_id"] == retried_id and d["status"] == "delivered"]
    row = wait_for(retried_delivery, 15, what="the retried delivery in the API")[0]
    assert row["attempts"] == 2 and row["last_status_code"] == 204


def test_redirects_are_not_followed(stack):
    receiver = Receiver(fail_first={}, redirect={"/moved"})
    call = api(stack, stack.member_token, stack.project)
    sub = call("POST", "/subscriptions", json={"subscription": {
        "url": receiver.url("/moved"), "categories": ["creation"]}}).json()["subscription"]
    client = trove(stack)
    inst = client.instances.create("redirected", "d1", volume={"size": 1}, datastore="postgresql",
                                   datastore_version=installed_pg_version())
    wait_active(client, inst.id)

    def refused_delivery():
        rows = call("GET", f"/subscriptions/{sub['id']}/deliveries").json()["deliveries"]
        return [d for d in rows if d["resource_id"] == inst.id and d["last_status_code"] == 302]
    row = wait_for(refused_delivery, 20, what="a delivery answered with a redirect")[0]
    assert "redirects are not followed" in row["last_error"] and row["status"] == "retrying"
    assert not [c for c in receiver.calls if c["path"] == "/redirected"]
    call("DELETE", f"/subscriptions/{sub['id']}")
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)


@pytest.mark.parametrize("url, fragment", [
    ("http://169.254.169.254/latest", "link-local"),
    ("http://10.1.2.3/hook", "private"),
    ("ftp://example.org/x", "http"),
    ("http://user:pw@127.0.0.1/x", "credentials"),
])
def test_unsafe_targets_are_refused(stack, url, fragment):
    r = api(stack, stack.member_token, stack.project)("POST", "/subscriptions", json={"subscription": {"url": url}})
    assert r.status_code == 400 and fragment in r.json()["badRequest"]["message"]


def test_bad_subscription_bodies(stack):
    call = api(stack, stack.member_token, stack.project)
    assert call("POST", "/subscriptions", json={"subscription": {"url": "http://127.0.0.1:9/x",
                                                                 "event_types": ["nope"]}}).status_code == 400
    assert call("POST", "/subscriptions", json={"subscription": {"url": "http://127.0.0.1:9/x",
                                                                 "bogus": 1}}).status_code == 400
    assert call("POST", "/subscriptions", json={"subscription": {"url": "http://127.0.0.1:9/x",
                                                                 "secret": "short"}}).status_code == 400


def test_cli_lists_event_types_and_manages_subscriptions(stack):
    import subprocess
    import sys
    from pathlib import Path

    coffer = str(Path(sys.executable).parent / "coffer")
    env = {"COFFER_API_URL": stack.api_url, "COFFER_PROJECT": stack.project, "COFFER_TOKEN": stack.member_token,
           "PATH": "/usr/bin:/bin"}

    def run(*args) -> str:
        out = subprocess.run([coffer, *args], capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "coffer.instance.active.v1" in run("event-types", "list")
    created = run("subscription", "create", "--url", "http://127.0.0.1:9/cli", "--category", "failure")
    sub_id = created.splitlines()[1].split()[0]
    assert "signing secret (shown once):" in created
    assert sub_id in run("subscription", "list")
    assert "False" in run("subscription", "update", sub_id, "--disable")
    run("subscription", "delete", sub_id)
    assert sub_id not in run("subscription", "list")
    bad = subprocess.run([coffer, "subscription", "create", "--url", "http://169.254.169.254/"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 1 and "link-local" in bad.stderr
