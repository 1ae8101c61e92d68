"""Switchovers of a PostgreSQL replica set, end to end: a planned promote loses no
row and the old primary follows the new one; SIGKILL of the primary's engine makes
the monitor fail over on its own: the old primary is fenced (powered off, out of
the set), and writes through the set's stable endpoint reach the new primary."""
from __future__ import annotations

import os
import signal

import psycopg
import pytest

from plumbing import topics as T
from tests.conftest import trove, wait_for
from tests.e2e.support import agent_processes, installed_pg_version, postmasters, topic_events
from tests.e2e.test_replication import APP_USER, PASSWORD, delete_all, make_set

pytestmark = pytest.mark.e2e


def endpoint(inst, **options):
    return psycopg.connect(host=inst.hostname, port=5432, user="app", password=PASSWORD, dbname="appdb",
                           autocommit=True, connect_timeout=3, **options)


def write_through_endpoint(inst, row_id: int) -> str:
    """Insert a row through the stable endpoint; the address of the server that took it."""
    with endpoint(inst) as conn:
        conn.execute("INSERT INTO orders VALUES (%s)", (row_id,))
        return conn.execute("SELECT host(inet_server_addr())").fetchone()[0]


def rows_on(address: str) -> list[int]:
    with psycopg.connect(host=address, user="app", password=PASSWORD, dbname="appdb", connect_timeout=3) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM orders ORDER BY id")]


def topology(client, primary_id: str, replica_id: str):
    """(primary, replica) once the API shows `replica_id` following `primary_id`."""
    def shown():
        primary, replica = client.instances.get(primary_id), client.instances.get(replica_id)
        if primary.status == "ACTIVE" and replica.status == "ACTIVE" and \
                [r["id"] for r in getattr(primary, "replicas", [])] == [replica_id] and \
                getattr(replica, "replica_of", {}).get("id") == primary_id:
            return primary, replica
        return None
    return wait_for(shown, 90, what=f"{replica_id} following {primary_id}")


def test_planned_promote_then_automatic_failover(stack):
    client = trove(stack)
    first, second = make_set(client, "postgresql", installed_pg_version(), databases=[{"name": "appdb"}],
                             users=APP_USER)
    with endpoint(first) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    acked = [i for i in range(1, 51) if write_through_endpoint(first, i)]

    # planned: the replica becomes the primary, every acknowledged row with it
    client.instances.promote_to_replica_source(second.id)
    second, first = topology(client, second.id, first.id)
    assert rows_on(second.ip[0]) == acked
    assert wait_for(lambda: write_through_endpoint(second, 51) == second.ip[0], 30,
                    what="a write through the endpoint reaching the new primary")
    acked.append(51)
    assert wait_for(lambda: rows_on(first.ip[0]) == acked, 30, what="the old primary following the new one")

    # unplanned: the primary's engine is killed; the monitor fails over to the replica
    for pid in postmasters(stack.home / "instances" / second.id):
        os.kill(pid, signal.SIGKILL)

    def failed_over():
        try:
            return write_through_endpoint(second, 52) == first.ip[0]
        except psycopg.OperationalError:
            return False
    wait_for(failed_over, 60, interval=0.2, what="a write through the endpoint after the failover")
    assert rows_on(first.ip[0]) == acked + [52]
    fenced = wait_for(lambda: (lambda i: i if i.status == "ERROR" else None)(client.instances.get(second.id)), 30,
                      what="the old primary shown fenced")
    assert "fenced" in fenced.fault["message"]
    assert not getattr(fenced, "replica_of", None) and not getattr(fenced, "replicas", None)
    assert postmasters(stack.home / "instances" / second.id) == []  # powered off: it takes no write again
    new = client.instances.get(first.id)
    assert not getattr(new, "replica_of", None) and new.hostname == second.hostname
    # the new primary's agent has seen the raised epoch: a backup of it still works
    wait_for(lambda: client.instances.get(first.id).status == "ACTIVE", 30, what="the new primary ACTIVE")
    backup = client.backups.create("after-failover", first.id)
    done = wait_for(lambda: (lambda b: b if b.status in ("COMPLETED", "FAILED") else None)(
        client.backups.get(backup.id)), 120, what="the backup of the new primary")
    assert done.status == "COMPLETED", getattr(done, "fail_reason", "")
    client.backups.delete(backup.id)
    delete_all(client, fenced, new)


def health_events(stack, instance_id: str | None) -> list:
    """The health topic's events about one instance (None: all of them), decoded."""
    return topic_events(stack.bootstrap, T.HEALTH_EVENTS, instance_id)


def test_no_failover_when_it_is_off_an_alert_instead_and_eject_on_request(stack):
    client = trove(stack)
    primary, replica = make_set(client, "postgresql", installed_pg_version(), databases=[{"name": "appdb"}],
                                users=APP_USER)
    with endpoint(primary) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    client.instances._update(f"/instances/{primary.id}", {"instance": {"replication": {"failover_enabled": False}}})
    wait_for(lambda: client.instances.get(replica.id).replication["failover_enabled"] is False, 30,
             what="failover off shown")
    for pid in postmasters(stack.home / "instances" / primary.id):
        os.kill(pid, signal.SIGKILL)

    def alerted():
        return [e for e in health_events(stack, primary.id) if e.type == "coffer.health.alert.v1"
                and e.data["category"] == "failover"] or None
    assert "off" in wait_for(alerted, 60, what="the failover alert")[0].data["message"]
    assert not [e for e in health_events(stack, primary.id) if e.type == "coffer.failover.requested.v1"]
    shown = client.instances.get(replica.id)
    assert shown.replica_of["id"] == primary.id  # still a replica: nothing was promoted
    with psycopg.connect(host=replica.ip[0], user="app", password=PASSWORD, dbname="appdb") as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)

    # Trove's eject: the operator fails the dead primary over by hand
    wait_for(lambda: client.instances.get(primary.id).operating_status != "HEALTHY", 30, what="primary unhealthy")
    client.instances.eject_replica_source(primary.id)

    def ejected():
        try:
            return write_through_endpoint(replica, 1) == replica.ip[0]
        except psycopg.Error:
            return False
    wait_for(ejected, 60, interval=0.2, what="a write through the endpoint after the eject")
    fenced = wait_for(lambda: (lambda i: i if i.status == "ERROR" else None)(client.instances.get(primary.id)), 60,
                      what="the ejected primary shown fenced")
    assert not getattr(client.instances.get(replica.id), "replica_of", None)
    delete_all(client, fenced, client.instances.get(replica.id))


def test_no_healthy_replica_means_no_failover_an_alert_instead(stack):
    client = trove(stack)
    primary, replica = make_set(client, "postgresql", installed_pg_version(), databases=[{"name": "appdb"}],
                                users=APP_USER)
    replica_dir, primary_dir = stack.home / "instances" / replica.id, stack.home / "instances" / primary.id
    for pid in agent_processes(replica_dir) + postmasters(replica_dir):
        os.kill(pid, signal.SIGKILL)  # the replica can no longer say how far it got
    for pid in postmasters(primary_dir):
        os.kill(pid, signal.SIGKILL)

    def failed():
        return [e for e in health_events(stack, None) if e.type == "coffer.failover.failed.v1"
                and e.data["old_primary_id"] == primary.id] or None
    [failure] = wait_for(failed, 90, what="the failover ending failed")
    assert "no healthy replica" in failure.data["message"]
    # nothing fenced, nothing promoted, and no second try
    assert agent_processes(primary_dir), "the old primary's agent was fenced"
    assert client.instances.get(replica.id).replica_of["id"] == primary.id
    assert len([e for e in health_events(stack, primary.id) if e.type == "coffer.failover.requested.v1"]) == 1
    delete_all(client, replica, primary)


def test_a_silent_primary_agent_means_a_failover_and_its_engine_fenced(stack):
    client = trove(stack)
    primary, replica = make_set(client, "postgresql", installed_pg_version(), databases=[{"name": "appdb"}],
                                users=APP_USER)
    with endpoint(primary) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    write_through_endpoint(primary, 1)
    primary_dir = stack.home / "instances" / primary.id
    for pid in agent_processes(primary_dir):
        os.kill(pid, signal.SIGKILL)  # its engine still runs and takes writes: only fencing stops it

    attempts = iter(range(2, 10_000))
    # the old primary's engine takes writes until it is fenced: each attempt writes a new row
    last = {}

    def failed_over():
        last["id"] = next(attempts)
        try:
            return write_through_endpoint(primary, last["id"]) == replica.ip[0]
        except psycopg.OperationalError:
            return False
    wait_for(failed_over, 60, interval=0.2, what="a write through the endpoint after the failover")
    assert postmasters(primary_dir) == []  # fenced: the engine that was still running is gone
    rows = rows_on(replica.ip[0])
    assert 1 in rows and last["id"] in rows
    requested = [e for e in health_events(stack, primary.id) if e.type == "coffer.failover.requested.v1"]
    assert requested and "unhealthy" in requested[0].data["reason"]
    fenced = wait_for(lambda: (lambda i: i if i.status == "ERROR" else None)(client.instances.get(primary.id)), 30,
                      what="the old primary shown fenced")
    delete_all(client, fenced, client.instances.get(replica.id))


def test_a_monitor_worker_killed_mid_way_the_failover_still_happens_once(stack):
    """Two monitor workers share the instances; the stack's own is SIGKILLed right
    after the primary's engine: the other takes its partitions over (the table
    recovered from its changelog) and the set fails over exactly once."""
    client = trove(stack)
    first_worker = stack.procs["monitor"]
    second_worker = stack.start_service("monitor")
    try:
        primary, replica = make_set(client, "postgresql", installed_pg_version(), databases=[{"name": "appdb"}],
                                    users=APP_USER)
        with endpoint(primary) as conn:
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
        for pid in postmasters(stack.home / "instances" / primary.id):
            os.kill(pid, signal.SIGKILL)
        first_worker.send_signal(signal.SIGKILL)
        first_worker.wait()

        def failed_over():
            try:
                return write_through_endpoint(primary, 1) == replica.ip[0]
            except psycopg.OperationalError:
                return False
        wait_for(failed_over, 90, interval=0.2, what="a write through the endpoint after the failover")
        fenced = wait_for(lambda: (lambda i: i if i.status == "ERROR" else None)(client.instances.get(primary.id)),
                          30, what="the old primary shown fenced")
        completed = [e for e in health_events(stack, primary.id) if e.type == "coffer.failover.completed.v1"]
        assert len(completed) == 1 and completed[0].data["new_primary_id"] == replica.id
        delete_all(client, fenced, client.instances.get(replica.id))
    finally:
        second_worker.terminate()
        second_worker.wait(15)
        stack.start_service("monitor")  # the stack as it was: one monitor worker
