"""Automatic failover of a PostgreSQL replica set under a steady write load through
its stable endpoint: SIGKILL of the primary's engine processes, then RTO (the last
acknowledged write before the kill → the first acknowledged write after it) and RPO
(acknowledged writes missing afterwards), 5 runs each with asynchronous and with
synchronous replication. Next to it, measured in the same run: the raw promote
(SIGKILL of a plain primary, pg_promote() on its streaming replica, first write; no
Coffer). Then the same failover for MariaDB (asynchronous GTID replication).
Run with the project's venv: .venv/bin/python bench/failover.py"""
from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pymysql
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from coffer.cli import _create_token  # noqa: E402
from coffer.stack import Stack  # noqa: E402
from plumbing import broker  # noqa: E402

RUNS = int(os.environ.get("COFFER_BENCH_RUNS", "5"))
PG_VERSION = sorted(p.name for p in Path("/usr/lib/postgresql").iterdir())[-1]
BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")
PASSWORD = "S3cret-pass"


def as_postgres(*argv: str) -> list[str]:
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]


def children_of(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(proc.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def kill_postmaster(data: Path) -> None:
    """SIGKILL the postmaster and every one of its processes at once."""
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    for p in [pid, *children_of(pid)]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- the raw floor: a plain primary and streaming replica, no Coffer -------------------------
def raw_promote(root: Path, i: int) -> float:
    """SIGKILL of the primary → pg_promote() on the replica → first write acknowledged."""
    primary, replica, sock = root / f"p{i}", root / f"r{i}", root / f"s{i}"
    sock.mkdir(mode=0o700)
    shutil.chown(sock, "postgres", "postgres")
    port_p, port_r = broker.free_port(), broker.free_port()
    run = lambda *argv: subprocess.run(as_postgres(*argv), check=True, capture_output=True, cwd="/")  # noqa: E731
    run(str(BIN / "initdb"), "-D", str(primary), "--username=postgres", "--auth-local=trust", "--no-sync")
    options = f"-c listen_addresses='' -c unix_socket_directories={sock} -c wal_retrieve_retry_interval=100ms"
    run(str(BIN / "pg_ctl"), "start", "-D", str(primary), "-w", "-s", "-l", str(root / f"p{i}.log"),
        "-o", f"{options} -p {port_p}")
    run(str(BIN / "pg_basebackup"), "-h", str(sock), "-p", str(port_p), "-U", "postgres", "-D", str(replica),
        "-X", "stream", "-R", "-c", "fast")
    run(str(BIN / "pg_ctl"), "start", "-D", str(replica), "-w", "-s", "-l", str(root / f"r{i}.log"),
        "-o", f"{options} -p {port_r}")
    with psycopg.connect(host=str(sock), port=port_p, user="postgres", dbname="postgres", autocommit=True) as c:
        c.execute("CREATE TABLE t (id int)")
        c.execute("INSERT INTO t VALUES (1)")
    time.sleep(0.5)  # streaming, idle
    try:
        kill_postmaster(primary)
        started = time.perf_counter()
        with psycopg.connect(host=str(sock), port=port_r, user="postgres", dbname="postgres", autocommit=True) as c:
            c.execute("SELECT pg_promote(true, 60)")
            c.execute("INSERT INTO t VALUES (2)")
        return time.perf_counter() - started
    finally:
        subprocess.run(as_postgres(str(BIN / "pg_ctl"), "stop", "-D", str(replica), "-m", "immediate", "-s"),
                       capture_output=True, cwd="/")


def raw_promotes(runs: int) -> list[float]:
    root = Path(tempfile.mkdtemp(prefix="coffer-bench-raw-", dir="/tmp"))
    os.chmod(root, 0o755)
    shutil.chown(root, "postgres", "postgres")
    try:
        return [raw_promote(root, i) for i in range(runs)]
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- through Coffer ------------------------------------------------------------------------------
class Client:
    def __init__(self, base: str, token: str):
        self.base, self.session = base, requests.Session()
        self.session.headers["X-Auth-Token"] = token

    def get(self, instance_id: str) -> dict:
        return self.session.get(f"{self.base}/instances/{instance_id}").json()["instance"]

    def wait(self, instance_id: str, ready, what: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            inst = self.get(instance_id)
            if inst["status"] == "ERROR" and "fenced" not in (inst.get("fault") or {}).get("message", ""):
                raise RuntimeError(f"{instance_id} failed: {inst.get('fault')}")
            if ready(inst):
                return inst
            time.sleep(0.05)
        raise TimeoutError(what)

    def replica_set(self, engine, name: str, synchronous: bool) -> tuple[dict, dict]:
        r = self.session.post(f"{self.base}/instances", json={"instance": {
            "name": name, "flavorRef": "d1", "volume": {"size": 1},
            "datastore": {"type": engine.datastore, "version": engine.version}, "databases": [{"name": "appdb"}],
            "users": [{"name": "app", "password": PASSWORD, "databases": [{"name": "appdb"}]}]}})
        r.raise_for_status()
        healthy = lambda i: i["status"] == "ACTIVE" and i["operating_status"] == "HEALTHY"  # noqa: E731
        primary = self.wait(r.json()["instance"]["id"], healthy, "primary")
        r = self.session.post(f"{self.base}/instances", json={"instance": {"name": f"{name}-r",
                                                                           "replica_of": primary["id"]}})
        r.raise_for_status()
        replica = self.wait(r.json()["instance"]["id"], healthy, "replica")
        if synchronous:
            self.session.put(f"{self.base}/instances/{primary['id']}", json={"instance": {
                "replication": {"synchronous": True}}}).raise_for_status()
            self.wait(primary["id"], lambda i: i.get("replication", {}).get("synchronous"), "synchronous")
        return self.get(primary["id"]), replica

    def delete(self, *ids: str) -> None:
        for instance_id in ids:
            self.session.delete(f"{self.base}/instances/{instance_id}")
        for instance_id in ids:
            while self.session.get(f"{self.base}/instances/{instance_id}").status_code != 404:
                time.sleep(0.1)


class Postgres:
    datastore, version, table = "postgresql", PG_VERSION, "CREATE TABLE acks (id int PRIMARY KEY)"
    errors = (psycopg.Error,)

    @staticmethod
    def connect(host: str):
        return psycopg.connect(host=host, port=5432, user="app", password=PASSWORD, dbname="appdb",
                               autocommit=True, connect_timeout=1)

    @staticmethod
    def query(conn, sql: str, args=()) -> list:
        cur = conn.execute(sql, args)
        return cur.fetchall() if cur.description else []

    server = "SELECT host(inet_server_addr())"

    def check_synchronous(self, host: str) -> None:
        """The primary waits for a replica (the setting lands a moment after the API shows it)."""
        conn = self.connect(host)
        try:
            deadline = time.monotonic() + 10
            while not self.query(conn, "SHOW synchronous_standby_names")[0][0]:
                if time.monotonic() > deadline:
                    raise RuntimeError("synchronous replication is not on")
                time.sleep(0.1)
        finally:
            conn.close()

    @staticmethod
    def kill(instance_dir: Path) -> None:
        kill_postmaster(instance_dir / "data")


class Mariadb:
    datastore, table = "mariadb", "CREATE TABLE acks (id int PRIMARY KEY)"
    errors = (pymysql.MySQLError, OSError)
    server = "SELECT @@bind_address"

    @property
    def version(self) -> str:
        out = subprocess.run(["/usr/sbin/mariadbd", "--version"], capture_output=True, text=True).stdout
        return ".".join(out.split("Ver ")[1].split(".")[:2])

    @staticmethod
    def connect(host: str):
        return pymysql.connect(host=host, port=3306, user="app", password=PASSWORD, database="appdb",
                               autocommit=True, connect_timeout=1, read_timeout=5, write_timeout=5)

    @staticmethod
    def query(conn, sql: str, args=()) -> list:
        with conn.cursor() as cur:
            cur.execute(sql, args or None)
            return list(cur.fetchall())

    @staticmethod
    def kill(instance_dir: Path) -> None:
        os.kill(int((instance_dir / "run" / "mariadbd.pid").read_text()), signal.SIGKILL)

    def check_synchronous(self, host: str) -> None:
        """The primary waits for a semi-synchronous replica (its IO thread may take a moment to connect)."""
        conn = self.connect(host)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                status = dict(self.query(conn, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'"))
                if status.get("Rpl_semi_sync_master_status") == "ON" and \
                        int(status.get("Rpl_semi_sync_master_clients", 0)) >= 1:
                    return
                time.sleep(0.1)
            raise RuntimeError(f"semi-synchronous replication is not on: {status}")
        finally:
            conn.close()


class Writer(threading.Thread):
    """Inserts 1, 2, 3, ... through the endpoint, one autocommit insert at a time,
    reconnecting at once when the connection breaks; remembers each acknowledgement
    and which server gave it."""

    def __init__(self, engine, host: str):
        super().__init__(daemon=True)
        self.engine, self.host, self.acked, self.stop = engine, host, [], threading.Event()

    def run(self) -> None:
        n, conn, server = 0, None, None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = self.engine.connect(self.host)
                    server = self.engine.query(conn, self.engine.server)[0][0]
                n += 1
                self.engine.query(conn, "INSERT INTO acks VALUES (%s)", (n,))
                self.acked.append((n, time.perf_counter(), server))
                time.sleep(0.005)
            except self.engine.errors:
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)


def one_failover(client: Client, stack: Stack, engine, name: str,
                 synchronous: bool) -> tuple[float, int, int, float]:
    """(RTO seconds, acknowledged writes lost, acknowledged writes in all, writes/s before the kill)."""
    primary, replica = client.replica_set(engine, name, synchronous)
    if synchronous:
        engine.check_synchronous(primary["hostname"])
    conn = engine.connect(primary["hostname"])
    engine.query(conn, engine.table)
    conn.close()
    writer = Writer(engine, primary["hostname"])
    writer.start()
    time.sleep(2)
    engine.kill(stack.home / "instances" / primary["id"])
    deadline = time.monotonic() + 60
    while not [a for a in writer.acked if a[2] == replica["ip"][0]] and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    writer.stop.set()
    writer.join()
    # the last write the old primary acknowledged, the first the new primary did
    before = [t for _, t, server in writer.acked if server == primary["ip"][0]]
    after = [t for _, t, server in writer.acked if server == replica["ip"][0]]
    if not after:
        raise RuntimeError("no write was acknowledged by the new primary")
    conn = engine.connect(primary["hostname"])
    present = {r[0] for r in engine.query(conn, "SELECT id FROM acks")}
    conn.close()
    lost = sum(1 for n, _, _ in writer.acked if n not in present)
    client.wait(primary["id"], lambda i: i["status"] == "ERROR", "old primary fenced")
    client.delete(primary["id"], replica["id"])
    return after[0] - before[-1], lost, len(writer.acked), (len(before) - 1) / (before[-1] - before[0])


def main() -> None:
    raw = raw_promotes(RUNS)
    home = Path(tempfile.mkdtemp(prefix="coffer-bench-", dir="/tmp"))
    os.chmod(home, 0o755)
    os.environ["COFFER_HOME"] = str(home)
    stack = Stack(home=home, api_port=broker.free_port(), extra_env={
        "COFFER_LOCAL_ADDRESS_RANGE": f"127.{random.randint(20, 250)}.{random.randint(0, 255)}.0/24",
        "COFFER_HOME": str(home),
        "COFFER_RATE_LIMIT_PER_MINUTE": "100000"})  # the bench polls the API every 50 ms
    results: dict[str, list[tuple[float, int, int, float]]] = {}
    try:
        stack.start()
        token = asyncio.run(_create_token("bench", "member"))
        stack.wait_ready(token, "bench")
        client = Client(f"{stack.api_url}/v1.0/bench", token)
        for mode, engine in [m for m in (("async", Postgres()), ("sync", Postgres()), ("MariaDB, async", Mariadb()),
                                          ("MariaDB, sync", Mariadb()))
                             if os.environ.get("COFFER_BENCH_ONLY", m[0]) == m[0]]:
            results[mode] = []
            for i in range(RUNS):
                results[mode].append(one_failover(client, stack, engine, mode.replace(", ", "-") + str(i),
                                                  mode.endswith("sync") and not mode.endswith("async")))
                print(f"{mode} run {i + 1}: RTO {results[mode][-1][0]:.3f} s, lost {results[mode][-1][1]}",
                      flush=True)
    finally:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)

    delay = os.environ.get("COFFER_FAILOVER_DELAY_SECONDS", "1.5")
    print(f"\nPostgreSQL {PG_VERSION}, {os.cpu_count()} CPUs; primary + 1 replica, writes through the stable "
          f"endpoint; SIGKILL of the primary's engine; failover delay {delay} s, heartbeat 1 s")
    raw_med = statistics.median(raw)
    print(f"{'raw pg_promote + first write':<30} median {raw_med:6.3f} s   min {min(raw):.3f}   max {max(raw):.3f}"
          "   (baseline: no Coffer, no detection)")
    for mode, runs in results.items():
        rto = [r[0] for r in runs]
        print(f"{'coffer RTO, ' + mode:<30} median {statistics.median(rto):6.3f} s   min {min(rto):.3f}   "
              f"max {max(rto):.3f}   RPO: {sum(r[1] for r in runs)} of {sum(r[2] for r in runs)} acknowledged "
              f"writes lost over {RUNS} runs (per run: {[r[1] for r in runs]}); "
              f"{statistics.median(r[3] for r in runs):.0f} writes/s before the kill (one client, autocommit)")
    if "MariaDB, async" in results:
        print("(MariaDB's raw promote, STOP SLAVE; RESET SLAVE ALL; read_only=0 → first write, is 0.02 s in "
              "../shared/reference/engines.md; not measured here)")
    if "async" in results and "sync" in results:
        med = statistics.median(r[0] for r in results["async"])
        print(f"target: median RTO < 5 s → {'met' if med < 5 else 'NOT met'}; 0 lost in sync mode → "
              f"{'met' if sum(r[1] for r in results['sync']) == 0 else 'NOT met'}")


if __name__ == "__main__":
    main()
