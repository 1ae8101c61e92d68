"""Redis instances end to end, like PostgreSQL's: python-troveclient against the
whole stack as processes, checked with a real Redis client (redis-py)."""
from __future__ import annotations

import json
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import trove, wait_for
from tests.e2e.support import agent_processes, wait_active, wait_gone

pytestmark = pytest.mark.e2e

PASSWORD = "S3cret-pass"
NO_RETRY = Retry(NoBackoff(), 0)  # redis-py retries a refused AUTH with backoff by default


def redis_servers(instance_dir: Path) -> list[int]:
    """redis-server processes started with the instance's config file."""
    conf = str(instance_dir / "redis.conf").encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if cmd and cmd[0].endswith(b"redis-server") and conf in cmd and state != "Z":
                pids.append(int(proc.name))
    return pids


def redis_version(client) -> str:
    """The version name the provisioner discovered (major.minor of redis-server)."""
    def names():
        try:
            return [v.name for v in client.datastore_versions.list("redis")]
        except Exception:  # noqa: BLE001 - not projected yet
            return None
    return max(wait_for(names, 30, interval=0.2, what="the redis datastore"),
               key=lambda name: [int(part) for part in name.split(".")])


def create(client, name: str):
    return client.instances.create(name, "d1", volume={"size": 1}, datastore="redis",
                                   datastore_version=redis_version(client),
                                   users=[{"name": "app", "password": PASSWORD}])


def app_client(address: str, password: str = PASSWORD) -> redis.Redis:
    return redis.Redis(host=address, port=6379, username="app", password=password, socket_timeout=5,
                       socket_connect_timeout=5, retry=NO_RETRY)


def assert_refused(address: str, **auth) -> None:
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host=address, port=6379, socket_timeout=5, retry=NO_RETRY, **auth).get("greeting")


def test_create_connect_delete_redis(stack):
    client = trove(stack)
    started = time.monotonic()
    inst = create(client, "redis1")
    assert inst.status == "BUILD"
    active = wait_active(client, inst.id, timeout=60)
    print(f"\nredis create -> ACTIVE/HEALTHY: {time.monotonic() - started:.2f} s")
    installed = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=True).stdout
    number = re.search(r"v=(\d+)\.(\d+)\.", installed)
    assert active.datastore["type"] == "redis"
    assert active.datastore["version"] == f"{number.group(1)}.{number.group(2)}"
    address = active.ip[0]
    assert address.startswith("127.")

    app = app_client(address)
    assert app.set("greeting", "hello")
    assert app.get("greeting") == b"hello"
    assert app.acl_whoami() == "app"
    assert_refused(address)  # the default user is off: every client must authenticate
    assert_refused(address, protocol=2)
    assert_refused(address, username="app", password="wrong")
    assert_refused(address, password=PASSWORD)  # as the default user

    instance_dir = stack.home / "instances" / inst.id
    servers = redis_servers(instance_dir)
    assert len(servers) == 1, "one redis-server for the instance"
    status = Path(f"/proc/{servers[0]}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert uid == pwd.getpwnam("redis").pw_uid, "redis-server must run as the redis OS user"
    data = (instance_dir / "data").stat()
    assert stat.S_IMODE(data.st_mode) == 0o700 and data.st_uid == pwd.getpwnam("redis").pw_uid
    assert stat.S_IMODE((instance_dir / "admin.password").stat().st_mode) == 0o600
    for log in ("agent.log", "redis.log"):
        assert PASSWORD not in (instance_dir / log).read_text(errors="replace"), f"password in {log}"

    app.close()
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)
    wait_for(lambda: not redis_servers(instance_dir), 10, what="redis-server to end")
    assert not instance_dir.exists(), "the instance directory should be deleted"


def relaunch_agent(stack, instance_dir: Path) -> int:
    """What the provisioner does for an instance whose agent is not running: ask the
    host's agent launcher (one JSON line on its socket) to fork a new agent."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(stack.home / "launcher.sock"))
        s.sendall(json.dumps({"config": str(instance_dir / "agent.json")}).encode() + b"\n")
        pid = json.loads(s.makefile().readline())["pid"]
    (instance_dir / "agent.pid").write_text(str(pid))  # so a delete finds and stops it
    return pid


def test_redis_agent_restart_adopts_engine_and_data_survives_engine_restart(stack):
    client = trove(stack)
    inst = create(client, "redis2")
    address = wait_active(client, inst.id, timeout=60).ip[0]
    instance_dir = stack.home / "instances" / inst.id
    app = app_client(address)
    app.set("kept", "across restarts")
    [server] = redis_servers(instance_dir)

    def restart_agent(stop_engine: bool) -> None:
        engine_ups = (instance_dir / "agent.log").read_text().count('"engine up"')
        [agent] = agent_processes(instance_dir)
        os.kill(agent, signal.SIGKILL)  # the agent dies without stopping its engine
        wait_for(lambda: not agent_processes(instance_dir), 10, what="the agent to end")
        if stop_engine:
            os.kill(server, signal.SIGTERM)  # a clean shutdown: the AOF is flushed
            wait_for(lambda: not redis_servers(instance_dir), 10, what="redis-server to end")
        relaunch_agent(stack, instance_dir)
        wait_for(lambda: (instance_dir / "agent.log").read_text().count('"engine up"') > engine_ups,
                 30, what="the new agent's engine up")

    # 1. a new agent adopts the running server: no second one, the same process
    restart_agent(stop_engine=False)
    assert redis_servers(instance_dir) == [server]
    assert app.get("kept") == b"across restarts"

    # 2. the server stopped too: the new agent starts it from its data (AOF) and its users (aclfile)
    restart_agent(stop_engine=True)
    [restarted] = redis_servers(instance_dir)
    assert restarted != server
    app.close()
    app = app_client(address)
    assert app.get("kept") == b"across restarts"
    assert app.acl_whoami() == "app"
    assert_refused(address)
    assert_refused(address, username="app", password="wrong")
    app.close()
    # (not waited for here: HEALTHY again after an agent restart, which the API and the
    # monitor decide between them)

    client.instances.delete(inst.id)
    wait_gone(client, inst.id)
    wait_for(lambda: not redis_servers(instance_dir), 10, what="redis-server to end")
    assert not instance_dir.exists()
