"""Helpers the end-to-end tests share: waiting on instances, finding their processes."""
from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import redis
from aiokafka import AIOKafkaConsumer
from troveclient import exceptions as trove_exc

from plumbing.bus import decode_record

from tests.conftest import wait_for


def engine_processes(instance_dir: Path) -> list[int]:
    marker = str(instance_dir).encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmd and b"postgres" in cmd.split(b"\0")[0]:
                pids.append(int(proc.name))
    return pids


def postmasters(instance_dir: Path) -> list[int]:
    """Postmaster processes (started with -D <dir>/data), not their children."""
    marker = f"{instance_dir}/data".encode()
    found = []
    for pid in engine_processes(instance_dir):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in cmd:
            found.append(pid)
    return found


def installed_pg_version() -> str:
    return sorted(p.name for p in Path("/usr/lib/postgresql").iterdir())[-1]


def wait_active(client, instance_id: str, timeout: float = 60):
    def ready():
        inst = client.instances.get(instance_id)
        assert inst.status != "ERROR", getattr(inst, "fault", None)
        return inst if inst.status == "ACTIVE" and inst.operating_status == "HEALTHY" else None
    return wait_for(ready, timeout, what=f"{instance_id} ACTIVE/HEALTHY")


def wait_status(client, instance_id: str, status: str, timeout: float = 60):
    """The instance once it shows `status`; an ERROR on the way fails with its fault."""
    def reached():
        inst = client.instances.get(instance_id)
        assert inst.status != "ERROR", getattr(inst, "fault", None)
        return inst if inst.status == status else None
    return wait_for(reached, timeout, what=f"{instance_id} {status}")


def wait_gone(client, instance_id: str, timeout: float = 30):
    """Until the instance is gone; an ERROR on the way (a delete that failed) fails with its fault."""
    shown = []

    def gone():
        try:
            inst = client.instances.get(instance_id)
        except trove_exc.NotFound:
            return True
        shown[:] = [inst.status, getattr(inst, "fault", None)]
        assert inst.status != "ERROR", inst.fault
        return False
    try:
        wait_for(gone, timeout, what=f"{instance_id} deleted")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it showed {shown}") from None


def agent_processes(instance_dir: Path) -> list[int]:
    """Agents write their output to the instance's agent.log."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.readlink(proc / "fd" / "1") == str(instance_dir / "agent.log"):
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def assert_secrets_nowhere(stack, service_databases: str | None, secrets: list[str], instance_dir: Path) -> None:
    """None of these passwords is in a service's log, the instance's logs (agent and
    engine) or, in clear or in an Avro payload, any service's database."""
    logs = [*(stack.home / "logs").glob("*.log"), *instance_dir.glob("*.log")]
    assert logs
    for path in logs:
        text = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in text, f"a password is in {path}"
    if service_databases is None:
        return  # SQLite: the services' files are under the home, covered by nothing else here
    for service in ("api", "provisioner"):
        url = service_databases.replace("postgresql+asyncpg", "postgresql").format(service=service)
        dump = subprocess.run([str(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))[-1]), "--data-only",
                               url], capture_output=True, check=True, timeout=60).stdout
        for secret in secrets:
            assert secret.encode() not in dump and secret.encode().hex().encode() not in dump, \
                f"a password is in the {service} database"


def redis_admin(instance_dir: Path, address: str, **options) -> redis.Redis:
    """A client as the agent's own Redis admin (its password is in the instance
    directory): tenant users have no server administration such as CONFIG."""
    password = (instance_dir / "admin.password").read_text().strip()
    return redis.Redis(host=address, port=6379, username="coffer.admin", password=password,
                       socket_timeout=5, **options)


async def topic_records(bootstrap: str, *topics: str) -> list:
    """Every record on `topics` so far, from the start, until a second passes with none."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    records = []
    try:
        while batch := await consumer.getmany(timeout_ms=1000):
            for rs in batch.values():
                records += rs
    finally:
        await consumer.stop()
    return records


def topic_events(bootstrap: str, topic: str, key: str | None = None) -> list:
    """The events on `topic` so far (only those keyed `key`, when given), decoded."""
    records = asyncio.run(topic_records(bootstrap, topic))
    return [decode_record(r) for r in records if key is None or r.key == key.encode()]
