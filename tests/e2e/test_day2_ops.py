"""Day-2 operations beyond Trove's restart, through the bus with python-troveclient
and checked with each engine's own client: stop and start (the engine's port
refuses connections while stopped, the data is intact after), schedules that stop
and start by cron, the volume as a disk quota (a full volume is a full disk to the
engine; a resize lets it grow). One instance per engine for the whole module."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pymysql
import pytest
import redis
import requests
from aiokafka import AIOKafkaConsumer
from troveclient import exceptions as trove_exc

from coffer.cli import _create_token
from plumbing import topics as T
from plumbing.bus import decode_record
from tests.conftest import trove, wait_for
from tests.e2e.support import installed_pg_version, wait_active, wait_gone, wait_status

pytestmark = pytest.mark.e2e

ENGINES = ("postgresql", "mariadb", "redis")
PORTS = {"postgresql": 5432, "mariadb": 3306, "redis": 6379}
USER, PASSWORD = "ops", "Ops-pass-42"


@pytest.fixture(scope="module")
def instances(stack):
    client = trove(stack)
    made = {}
    for engine in ENGINES:
        version = installed_pg_version() if engine == "postgresql" else client.datastore_versions.list(engine)[0].name
        accounts = ({"databases": [{"name": "opsdb"}],
                     "users": [{"name": USER, "password": PASSWORD, "databases": [{"name": "opsdb"}]}]}
                    if engine != "redis" else {})
        made[engine] = client.instances.create(f"ops-{engine}", "d1", volume={"size": 1}, datastore=engine,
                                               datastore_version=version, **accounts).id
    active = {engine: wait_active(client, iid, timeout=120) for engine, iid in made.items()}
    yield active
    for iid in made.values():
        try:
            client.instances.delete(iid)
        except trove_exc.NotFound:
            pass  # a test deleted it
    for iid in made.values():
        wait_gone(client, iid)


def write(engine: str, address: str, value: str) -> None:
    if engine == "postgresql":
        with psycopg.connect(host=address, user=USER, password=PASSWORD, dbname="opsdb", connect_timeout=5) as c:
            c.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
            c.execute("INSERT INTO kept VALUES (%s)", (value,))
    elif engine == "mariadb":
        with pymysql.connect(host=address, user=USER, password=PASSWORD, database="opsdb", autocommit=True,
                             connect_timeout=5) as c, c.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS kept (v varchar(100))")
            cur.execute("INSERT INTO kept VALUES (%s)", (value,))
    else:
        with redis.Redis(host=address, port=6379, socket_timeout=5) as c:
            c.rpush("kept", value)


def read(engine: str, address: str) -> list[str]:
    if engine == "postgresql":
        with psycopg.connect(host=address, user=USER, password=PASSWORD, dbname="opsdb", connect_timeout=5) as c:
            return [v for (v,) in c.execute("SELECT v FROM kept").fetchall()]
    if engine == "mariadb":
        with pymysql.connect(host=address, user=USER, password=PASSWORD, database="opsdb",
                             connect_timeout=5) as c, c.cursor() as cur:
            cur.execute("SELECT v FROM kept")
            return [v for (v,) in cur.fetchall()]
    with redis.Redis(host=address, port=6379, socket_timeout=5) as c:
        return [v.decode() for v in c.lrange("kept", 0, -1)]


def refuses_connections(address: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((address, port)) != 0


def action(client, instance_id: str, body: dict) -> None:
    client.instances._action(instance_id, body)


@pytest.mark.parametrize("engine", ENGINES)
def test_stop_and_start_keep_the_data_and_the_capacity(stack, instances, engine):
    client = trove(stack)
    inst = instances[engine]
    address, port = inst.ip[0], PORTS[engine]
    write(engine, address, "before stop")

    action(client, inst.id, {"stop": {}})
    with pytest.raises(trove_exc.UnprocessableEntity):
        action(client, inst.id, {"stop": {}})  # a second action while one runs, or once stopped
    stopped = wait_status(client, inst.id, "SHUTDOWN")
    wait_for(lambda: client.instances.get(inst.id).operating_status == "SHUTDOWN", 30,
             what="operating status SHUTDOWN")
    assert refuses_connections(address, port), f"{engine} still listens on {address}:{port} while stopped"
    assert stopped.flavor["id"] == "d1"
    # nothing but a start is possible on a stopped instance, and the answer says why
    for refused in ({"restart": {}}, {"resize": {"flavorRef": "d2"}}):
        with pytest.raises(trove_exc.UnprocessableEntity) as caught:
            action(client, inst.id, refused)
        assert "stopped" in str(caught.value)
    # still stopped: nothing took the engine's absence for a failure
    shown = client.instances.get(inst.id)
    assert (shown.status, shown.operating_status) == ("SHUTDOWN", "SHUTDOWN")
    assert refuses_connections(address, port)

    action(client, inst.id, {"start": {}})
    with pytest.raises(trove_exc.UnprocessableEntity):
        action(client, inst.id, {"start": {}})
    wait_active(client, inst.id)
    assert read(engine, address) == ["before stop"]


def test_start_of_a_running_instance_is_refused(stack, instances):
    client = trove(stack)
    with pytest.raises(trove_exc.UnprocessableEntity) as caught:
        action(client, instances["postgresql"].id, {"start": {}})
    assert "not stopped" in str(caught.value)
    with pytest.raises(trove_exc.BadRequest):
        action(client, instances["postgresql"].id, {"stop": {"now": True}})


def test_the_mgmt_stop_is_the_stop_action(stack, instances):
    client, inst = trove(stack), instances["redis"]
    answer = api(stack, "POST", f"/mgmt/instances/{inst.id}/action", {"stop": {}}, token=stack.admin_token)
    assert answer.status_code == 202, answer.text
    wait_status(client, inst.id, "SHUTDOWN")
    assert refuses_connections(inst.ip[0], PORTS["redis"])
    action(client, inst.id, {"start": {}})
    wait_active(client, inst.id)


def api(stack, method: str, path: str, body=None, token: str | None = None, project: str | None = None):
    project = project or stack.project
    return requests.request(method, f"{stack.api_url}/v1.0/{project}{path}", json=body, timeout=10,
                            headers={"X-Auth-Token": token or stack.member_token})


def coffer_cli(stack, *args: str) -> str:
    done = subprocess.run([str(Path(sys.executable).parent / "coffer"), *args, "--api", stack.api_url,
                           "--project", stack.project, "--token", stack.member_token],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_schedules_are_validated_and_isolated(stack, instances):
    iid = instances["postgresql"].id
    bad = api(stack, "POST", f"/instances/{iid}/schedules", {"schedule": {"action": "stop", "cron": "0 25 * * *"}})
    assert bad.status_code == 400 and "0 25 * * *" in bad.json()["badRequest"]["message"]
    bad = api(stack, "POST", f"/instances/{iid}/schedules", {"schedule": {"action": "reboot", "cron": "0 0 * * *"}})
    assert bad.status_code == 400 and "action" in bad.json()["badRequest"]["message"]

    made = api(stack, "POST", f"/instances/{iid}/schedules", {"schedule": {"action": "stop", "cron": "0 0 20 * * 1-5"}})
    assert made.status_code == 200, made.text
    schedule = made.json()["schedule"]
    assert schedule["next_run_at"].endswith("20:00:00+00:00") and schedule["action"] == "stop"
    other_project = f"other-{stack.project}"
    other = asyncio.run(_create_token(other_project, "member"))
    assert api(stack, "GET", f"/instances/{iid}/schedules", token=other, project=other_project).status_code == 404
    assert api(stack, "DELETE", f"/instances/{iid}/schedules/{schedule['id']}", token=other,
               project=other_project).status_code == 404
    assert schedule["id"] in coffer_cli(stack, "schedule", "list", iid)
    coffer_cli(stack, "schedule", "delete", iid, schedule["id"])
    assert api(stack, "GET", f"/instances/{iid}/schedules").json() == {"schedules": []}


def test_a_schedule_with_a_short_cron_stops_and_one_starts_the_instance(stack, instances):
    client = trove(stack)
    inst = instances["redis"]
    base = f"/instances/{inst.id}/schedules"
    # every second: the first firing stops it, the next ones find it stopped and are skipped
    stopper = api(stack, "POST", base, {"schedule": {"action": "stop", "cron": "* * * * * *"}}).json()["schedule"]
    wait_status(client, inst.id, "SHUTDOWN")
    assert refuses_connections(inst.ip[0], PORTS["redis"])
    skipped = wait_for(lambda: api(stack, "GET", f"{base}/{stopper['id']}").json()["schedule"]["last_result"]
                       .startswith("skipped") and api(stack, "GET", f"{base}/{stopper['id']}").json()["schedule"],
                       20, what="a skipped firing")
    # a firing while the stop runs finds it busy; one after, stopped already
    assert "already stopped" in skipped["last_result"] or "not currently available" in skipped["last_result"]
    assert api(stack, "DELETE", f"{base}/{stopper['id']}").status_code == 202

    out = coffer_cli(stack, "schedule", "create", inst.id, "--action", "start", "--cron", "*/2 * * * * *")
    starter = next(s for s in api(stack, "GET", base).json()["schedules"] if s["action"] == "start")
    assert starter["id"] in out
    wait_active(client, inst.id)
    api(stack, "DELETE", f"{base}/{starter['id']}")
    assert api(stack, "GET", base).json() == {"schedules": []}
    with redis.Redis(host=inst.ip[0], port=6379, socket_timeout=5) as c:
        assert c.ping()


async def heartbeats(bootstrap: str, instance_id: str, count: int) -> list[dict]:
    """The next `count` heartbeats of the instance on coffer.telemetry, decoded."""
    consumer = AIOKafkaConsumer(T.TELEMETRY, bootstrap_servers=bootstrap, auto_offset_reset="latest",
                                group_id=None)
    await consumer.start()
    found: list[dict] = []
    try:
        async with asyncio.timeout(30):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    found += [decode_record(r).data for r in records if r.key == instance_id.encode()]
    finally:
        await consumer.stop()
    return found[:count]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_heartbeat_says_what_the_engine_does(stack, instances, engine):
    inst = instances[engine]
    for n in range(20):  # some work, and reads of it
        write(engine, inst.ip[0], f"telemetry {n}")
    assert len(read(engine, inst.ip[0])) >= 20
    beats = asyncio.run(heartbeats(stack.bootstrap, inst.id, 3))
    last = beats[-1]
    assert last["engine_up"] and not last["engine_stopped"] and last["role"] == "primary"
    assert [b["seq"] for b in beats] == sorted(b["seq"] for b in beats)
    assert last["connections"] >= 0 and last["xact_commit"] > 0
    assert all(b["transactions_per_second"] >= 0 and b["cpu_percent"] >= 0 for b in beats)
    assert 0 < last["cache_hit_ratio"] <= 1, last["cache_hit_ratio"]
    assert last["database_size_bytes"] > 0
    assert last["cpu_seconds"] > 0 and last["rss_bytes"] > 1024 ** 2
    # the volume: 1 GB, and what the engine's files take of it
    assert 0.9 * 1024 ** 3 < last["disk_total_bytes"] <= 1024 ** 3
    assert 0 < last["disk_used_bytes"] < last["disk_total_bytes"]


def mounts_under(path: Path) -> list[str]:
    return [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(path))]


def volume_used(client, instance_id: str) -> float:
    return client.instances.get(instance_id).volume.get("used", -1.0)


def fill(conn, megabytes: int) -> None:
    """Rows of 1 MiB stored as they are (no compression), 50 MiB a statement."""
    for _ in range(megabytes // 50):
        conn.execute("INSERT INTO filler SELECT repeat('x', 1048576)::bytea FROM generate_series(1, 50)")


@pytest.mark.skipif(os.geteuid() != 0, reason="loop-mounted volumes need root (plain directories otherwise)")
def test_the_volume_is_a_disk_quota_and_a_resize_lets_it_grow(stack, instances):
    client = trove(stack)
    inst = instances["postgresql"]
    instance_dir = stack.home / "instances" / inst.id
    assert mounts_under(instance_dir) == [str(instance_dir / "volume")]
    assert client.instances.get(inst.id).volume["size"] == 1
    wait_for(lambda: volume_used(client, inst.id) > 0, 30, what="volume.used reported")

    write("postgresql", inst.ip[0], "before the volume filled")
    with psycopg.connect(host=inst.ip[0], user=USER, password=PASSWORD, dbname="opsdb", autocommit=True) as conn:
        # unlogged: the table's own files fill the volume, not its WAL
        conn.execute("CREATE UNLOGGED TABLE filler (b bytea)")
        conn.execute("ALTER TABLE filler ALTER b SET STORAGE EXTERNAL")
        with pytest.raises(psycopg.errors.DiskFull, match="No space left on device"):
            fill(conn, 1500)
    wait_for(lambda: volume_used(client, inst.id) > 0.9, 30, what="a full volume reported")

    with pytest.raises(trove_exc.BadRequest, match="no change"):
        client.instances.resize_volume(inst.id, 1)
    with pytest.raises(trove_exc.RequestEntityTooLarge):
        client.instances.resize_volume(inst.id, 10_000)
    # within a raised quota, but no host has the disk: nothing changes but a fault
    admin = trove(stack, stack.admin_token)
    admin.quota.update(stack.project, {"volumes": 10_000})
    try:
        client.instances.resize_volume(inst.id, 5_000)
        failed = wait_for(lambda: (lambda i: i if i.status == "ACTIVE" and hasattr(i, "fault") else None)(
            client.instances.get(inst.id)), 60, what="the volume resize to fail")
    finally:
        admin.quota.update(stack.project, {"volumes": 40})
    assert failed.volume["size"] == 1 and "not enough disk" in failed.fault["message"]
    client.instances.resize_volume(inst.id, 2)
    assert client.instances.get(inst.id).status in ("RESIZE", "ACTIVE")
    with pytest.raises(trove_exc.UnprocessableEntity):
        client.instances.restart(inst.id)
    wait_active(client, inst.id, timeout=120)
    assert client.instances.get(inst.id).volume["size"] == 2
    with pytest.raises(trove_exc.BadRequest, match="cannot shrink"):
        client.instances.resize_volume(inst.id, 1)

    before = wait_for(lambda: volume_used(client, inst.id) > 0 and volume_used(client, inst.id), 30,
                      what="volume.used after the resize")
    with psycopg.connect(host=inst.ip[0], user=USER, password=PASSWORD, dbname="opsdb", autocommit=True) as conn:
        fill(conn, 400)  # room again
    assert "before the volume filled" in read("postgresql", inst.ip[0])
    # what the engine still holds in its buffers reaches the disk later: a part of it suffices
    wait_for(lambda: volume_used(client, inst.id) > before + 0.15, 60, what="volume.used grown")


def test_deleting_instances_unmounts_and_removes_their_volumes(stack, instances):
    client = trove(stack)
    for inst in instances.values():
        client.instances.delete(inst.id)
    for inst in instances.values():
        wait_gone(client, inst.id)
        assert not (stack.home / "instances" / inst.id).exists()
    assert mounts_under(stack.home / "instances") == []
