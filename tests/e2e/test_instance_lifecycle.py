"""Point 4 of the walking skeleton, with python-troveclient and the openstack CLI,
against the whole stack as processes, checked with a real PostgreSQL client."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from tests.conftest import trove, wait_for
from tests.e2e.support import engine_processes, installed_pg_version, postmasters, wait_active, wait_gone

pytestmark = pytest.mark.e2e


def test_create_connect_delete_with_troveclient(stack):
    client = trove(stack)
    version = installed_pg_version()
    inst = client.instances.create("pg1", "d1", volume={"size": 1}, datastore="postgresql",
                                   datastore_version=version, databases=[{"name": "appdb"}],
                                   users=[{"name": "app", "password": "S3cret-pass",
                                           "databases": [{"name": "appdb"}]}])
    assert inst.status == "BUILD"
    active = wait_active(client, inst.id)
    assert active.datastore["version"] == version
    listed = {i.id: i for i in client.instances.list()}
    address = listed[inst.id].addresses[0]["address"]
    assert address == active.ip[0] and address.startswith("127.")

    with psycopg.connect(host=address, user="app", password="S3cret-pass", dbname="appdb", connect_timeout=5) as conn:
        conn.execute("CREATE TABLE notes (id int primary key, body text)")
        conn.execute("INSERT INTO notes VALUES (1, 'hello')")
        assert conn.execute("SELECT body FROM notes").fetchone() == ("hello",)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=address, user="app", password="wrong", dbname="appdb", connect_timeout=5)

    instance_dir = stack.home / "instances" / inst.id
    assert postmasters(instance_dir), "the instance's postgres should be running"
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)
    assert not instance_dir.exists(), "the data directory should be deleted"
    wait_for(lambda: not engine_processes(instance_dir), 10, what="postgres processes to end")


def test_openstack_cli_create_show_delete(stack):
    version = installed_pg_version()
    base = [str(Path(sys.executable).parent / "openstack"), "--os-auth-type", "admin_token",
            "--os-token", stack.member_token, "--os-endpoint", f"{stack.api_url}/v1.0/{stack.project}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}

    def cli(*args) -> dict:
        out = subprocess.run(base + list(args) + ["-f", "json"], capture_output=True, text=True, env=env,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    created = cli("database", "instance", "create", "cli-pg", "--flavor", "d1", "--size", "1",
                  "--datastore", "postgresql", "--datastore-version", version,
                  "--databases", "appdb", "--users", "app:S3cret-pass")
    assert created["status"] == "BUILD"
    shown = wait_for(lambda: (lambda s: s if s["status"] == "ACTIVE" else None)(
        cli("database", "instance", "show", "cli-pg")), 60, interval=0.5, what="cli-pg ACTIVE")
    assert shown["operating_status"] == "HEALTHY"
    with psycopg.connect(host=shown["ip"][0] if isinstance(shown["ip"], list) else shown["ip"],
                         user="app", password="S3cret-pass", dbname="appdb", connect_timeout=5) as conn:
        conn.execute("CREATE TABLE t (x int)")
    subprocess.run(base + ["database", "instance", "delete", "cli-pg"], check=True, env=env, timeout=60)
    wait_gone(trove(stack), created["id"])


def test_no_valid_host_ends_in_error_with_fault(stack):
    client = trove(stack)
    inst = client.instances.create("nowhere", "d1", volume={"size": 1}, datastore="postgresql",
                                   datastore_version=installed_pg_version(), availability_zone="az-missing")
    failed = wait_for(lambda: (lambda i: i if i.status == "ERROR" else None)(client.instances.get(inst.id)),
                      30, what="ERROR")
    assert "No valid host" in failed.fault["message"]
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)
