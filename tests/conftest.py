"""Shared fixtures: the real broker, the services' databases on the real
PostgreSQL at 127.0.0.1:5432 (SQLite when it is not reachable, said loudly),
and the whole stack as processes."""
from __future__ import annotations

import asyncio
import os
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from plumbing import broker

RUN_ID = uuid.uuid4().hex[:8]
SERVICES = ["api", "scheduler", "provisioner", "backup", "monitor", "notifier"]
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
HUGE_FLAVOR = "dxl"


def postgres_reachable() -> bool:
    try:
        psycopg.connect(PG_ADMIN).close()
        return True
    except psycopg.Error:
        return False


def pytest_report_header(config):
    if postgres_reachable():
        return "services' databases: PostgreSQL at 127.0.0.1:5432 (one fresh database per service)"
    return "services' databases: SQLite — PostgreSQL at 127.0.0.1:5432 is NOT reachable"


@pytest.fixture(scope="session")
def service_databases():
    """COFFER_DATABASE_URL_TEMPLATE for the services: one fresh PostgreSQL database each."""
    if not postgres_reachable():
        yield None
        return
    names = [f"coffer_{RUN_ID}_{s}" for s in SERVICES + ["plumbing"]]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/coffer_{RUN_ID}_{{service}}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def kafka():
    """A real embedded broker on a free port."""
    port = broker.free_port()
    proc = broker.start(port)
    yield f"127.0.0.1:{port}"
    proc.kill()
    proc.wait()


@pytest.fixture(scope="session")
def coffer_home():
    # under /tmp: the engines' OS users must be able to traverse the path
    home = Path(tempfile.mkdtemp(prefix=f"coffer-test-{RUN_ID}-", dir="/tmp"))
    os.chmod(home, 0o755)
    yield home
    from services.provisioner.drivers.local_volumes import release_all
    release_all(home / "instances")  # no instance volume stays mounted, whatever happened
    shutil.rmtree(home, ignore_errors=True)


def stack_env(kafka: str, coffer_home: Path, service_databases: str | None) -> dict:
    octets = (random.randint(20, 250), random.randint(0, 255))
    env = {
        "COFFER_KAFKA_BOOTSTRAP": kafka,
        "COFFER_KAFKA_GROUP_SUFFIX": f"-{RUN_ID}",
        "COFFER_MONITOR_APP_ID": f"coffer-monitor-{RUN_ID}",
        # addresses of this run only, apart from any `make run` on the machine
        "COFFER_LOCAL_ADDRESS_RANGE": f"127.{octets[0]}.{octets[1]}.0/24",
        "COFFER_HOME": str(coffer_home),
        # public instances listen on the range's .1 (never an instance's): a loopback address, so the
        # tests can connect from chosen source addresses (127.0.0.0/8) to check allowed_cidrs
        "COFFER_PUBLIC_ADDRESS": f"127.{octets[0]}.{octets[1]}.1",
        # the tests' webhook receivers listen on loopback, and retries should come quickly
        "COFFER_WEBHOOKS_ALLOW_LOOPBACK": "true",
        "COFFER_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        # a flavor bigger than any host of the default inventory: a resize to it finds no valid host
        "COFFER_FLAVORS": f"{HUGE_FLAVOR}:ds64G:65536:8:80",
        # tests poll ten times a second: the limiter stays on, far above them (tests/integration/test_rate_limits.py)
        "COFFER_RATE_LIMIT_PER_MINUTE": "100000",
    }
    if service_databases:
        env["COFFER_DATABASE_URL_TEMPLATE"] = service_databases
    return env


@pytest.fixture(scope="session")
def stack(kafka, coffer_home, service_databases):
    from coffer.cli import _create_token
    from coffer.stack import Stack

    env = stack_env(kafka, coffer_home, service_databases)
    # so the CLI's token helper finds the API's database
    for key in ("COFFER_HOME", "COFFER_DATABASE_URL_TEMPLATE"):
        if key in env:
            os.environ[key] = env[key]
    running = Stack(home=coffer_home, api_port=broker.free_port(), extra_env=env)
    running.start()
    running.project = f"proj-{RUN_ID}"
    running.admin_token = asyncio.run(_create_token(running.project, "admin"))
    running.member_token = asyncio.run(_create_token(running.project, "member"))
    running.wait_ready(running.admin_token, running.project)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def keystone():
    """A real Keystone (tests/keystone.py), with one project of Coffer users."""
    from tests.keystone import start_keystone
    running = start_keystone()
    service = running.project("service")
    running.user("coffer", "coffer-service-secret", service, ["service", "admin"])
    running.tenant = running.project(f"coffer-{RUN_ID}")
    for role in ("admin", "member", "reader"):
        running.user(f"{role}-{RUN_ID}", f"{role}-secret", running.tenant, [role])
    yield running
    running.stop()
    shutil.rmtree(running.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def keystone_api(stack, keystone):
    """A second API process of the same stack, in Keystone mode (as a second API
    replica would run: same database, same consumer group); its URL."""
    import subprocess
    import sys

    import requests

    from plumbing.lifetime import die_with_parent
    port = broker.free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**stack.env(), "COFFER_API_PORT": str(port), "COFFER_AUTH": "keystone", "COFFER_KEYSTONE_URL": keystone.url,
           "COFFER_KEYSTONE_USERNAME": "coffer", "COFFER_KEYSTONE_PASSWORD": "coffer-service-secret",
           "COFFER_KEYSTONE_PROJECT": "service", "COFFER_API_PUBLIC_URL": url}
    log = open(stack.home / "logs" / "api-keystone.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "services.api"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)

    def answers():
        assert proc.poll() is None, f"the Keystone-mode API exited; see {log.name}"
        try:
            return requests.get(f"{url}/v1.0/x/flavors", timeout=2).status_code == 401
        except requests.ConnectionError:
            return False
    wait_for(answers, 60, what="the Keystone-mode API")
    yield url
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def trove(stack, token: str | None = None, project: str | None = None):
    """python-troveclient through a keystoneauth session, no Keystone."""
    from keystoneauth1 import session
    from keystoneauth1.token_endpoint import Token
    from troveclient.v1 import client

    url = f"{stack.api_url}/v1.0/{project or stack.project}"
    return client.Client(session=session.Session(auth=Token(url, token or stack.member_token)))


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
