"""Crashes and restarts: a provisioner killed mid-create, and the whole embedded
stack stopped with Ctrl-C and started again on the same state directory (a public
instance's public address included)."""
from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from plumbing import broker
from tests.conftest import trove, wait_for
from tests.e2e.support import (agent_processes, installed_pg_version, postmasters, wait_active,
                                               wait_gone)

pytestmark = pytest.mark.e2e


def test_provisioner_killed_mid_create_still_reaches_active_once(stack):
    client = trove(stack)
    inst = client.instances.create("crashy", "d1", volume={"size": 1}, datastore="postgresql",
                                   datastore_version=installed_pg_version(), databases=[{"name": "db1"}],
                                   users=[{"name": "u1", "password": "Pw-123456", "databases": [{"name": "db1"}]}])
    # the agent has been launched (an address is assigned) but the database is not ready yet
    wait_for(lambda: getattr(client.instances.get(inst.id), "ip", None), 30, interval=0.02, what="an address")
    stack.procs["provisioner"].send_signal(signal.SIGKILL)
    stack.procs["provisioner"].wait()
    stack.start_service("provisioner")

    active = wait_active(client, inst.id, timeout=90)
    instance_dir = stack.home / "instances" / inst.id
    assert len(agent_processes(instance_dir)) == 1
    assert len(postmasters(instance_dir)) == 1
    assert [p.name for p in (stack.home / "instances").iterdir() if p.name == inst.id] == [inst.id]
    with psycopg.connect(host=active.ip[0], user="u1", password="Pw-123456", dbname="db1", connect_timeout=5):
        pass
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)


def _read_until(proc: subprocess.Popen, pattern: str, timeout: float) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"{pattern!r} not seen in coffer run output:\n{''.join(lines)}")


def _coffer_run(home: Path, api_port: int, address_range: str) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
    env.update(COFFER_HOME=str(home), COFFER_API_PORT=str(api_port), COFFER_LOCAL_ADDRESS_RANGE=address_range,
               COFFER_PUBLIC_ADDRESS=address_range.replace(".0/24", ".1"),
               COFFER_KAFKA_PORT=str(broker.free_port()), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "coffer"), "run", "--project", "demo"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = _read_until(proc, r"Ctrl-C stops everything", 120)
    token = next(line.split()[-1] for line in lines if "member token:" in line)
    return proc, token


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return out


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmd:
                found.append(cmd.replace(b"\0", b" ").decode(errors="replace"))
    return found


def test_coffer_run_stops_everything_and_brings_instances_back():
    home = Path(f"/tmp/coffer-restart-{os.getpid()}-{random.randint(0, 10**6)}")
    home.mkdir(mode=0o755)
    api_port = broker.free_port()
    address_range = f"127.{random.randint(20, 250)}.{random.randint(0, 255)}.0/24"
    try:
        proc, token = _coffer_run(home, api_port, address_range)

        class Running:  # what trove() needs
            api_url, project, member_token = f"http://127.0.0.1:{api_port}", "demo", token
        client = trove(Running)
        inst = client.instances.create("keeper", "d1", volume={"size": 1}, datastore="postgresql",
                                       datastore_version=installed_pg_version(), databases=[{"name": "keep"}],
                                       users=[{"name": "k", "password": "Keep-me-1", "databases": [{"name": "keep"}]}],
                                       access={"is_public": True, "allowed_cidrs": ["127.0.0.0/8"]})
        active = wait_active(client, inst.id)
        address = active.ip[0]
        [public] = [a["address"] for a in active.addresses if a["type"] == "public"]
        with psycopg.connect(host=address, user="k", password="Keep-me-1", dbname="keep", autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('survives restarts')")

        out = _stop(proc)
        assert proc.returncode == 0, out
        assert _processes_mentioning(str(home)) == [], "Ctrl-C must leave no process behind"

        proc, token = _coffer_run(home, api_port, address_range)
        Running.member_token = token
        client = trove(Running)
        back = wait_active(client, inst.id, timeout=60)
        assert back.ip[0] == address

        def kept_row():
            # right after the restart the API may still show the state from before it
            try:
                with psycopg.connect(host=address, user="k", password="Keep-me-1", dbname="keep",
                                     connect_timeout=2) as conn:
                    return conn.execute("SELECT v FROM kept").fetchone()
            except psycopg.OperationalError:
                return None
        assert wait_for(kept_row, 30, interval=0.2, what="the restarted engine") == ("survives restarts",)
        # its public address listens again (the forwarder stopped with the stack)
        with psycopg.connect(host=public, user="k", password="Keep-me-1", dbname="keep", connect_timeout=5) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone() == ("survives restarts",)
        assert wait_active(client, inst.id).operating_status == "HEALTHY"
        client.instances.delete(inst.id)
        wait_gone(client, inst.id)
        _stop(proc)
        assert _processes_mentioning(str(home)) == []
    finally:
        subprocess.run(["pkill", "-9", "-f", str(home)], check=False)
        subprocess.run(["rm", "-rf", str(home)], check=False)
