"""Day-2 operations through Coffer next to the same operation done directly with
the engine's own client and tools, in the same run, for PostgreSQL, MariaDB and
Redis: database create, user create, configuration attach (a dynamic parameter; a
restart-required one, with the restart), restart and flavor resize. Coffer's side
is the whole embedded stack through python-troveclient, timed until the instance is
back to ACTIVE with the change in place; the direct side is CREATE DATABASE /
CREATE USER / ALTER SYSTEM + reload / SET GLOBAL / CONFIG SET / a restart of the
engine process (and, for a resize, its memory setting changed and a restart) on an
engine the bench starts itself. Median of RUNS runs after a warm-up.
Run with the project's venv: .venv/bin/python bench/operations.py"""
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
import time
from pathlib import Path

import psycopg
import pymysql
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from troveclient import exceptions as trove_exc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from coffer.cli import _create_token  # noqa: E402
from coffer.stack import Stack  # noqa: E402
from plumbing import broker  # noqa: E402

RUNS = int(os.environ.get("COFFER_BENCH_RUNS", "5"))
ENGINES = os.environ.get("COFFER_BENCH_ENGINES", "postgresql,mariadb,redis").split(",")
PG_VERSION = sorted(p.name for p in Path("/usr/lib/postgresql").iterdir())[-1]
PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")
OPERATIONS = ["database create", "user create", "config attach, dynamic", "config attach, restart-req.",
              "restart", "flavor resize"]
# engine -> (dynamic parameter, value), (restart-required parameter, value)
PARAMETERS = {"postgresql": (("work_mem", 8192), ("max_connections", 120)),
              "mariadb": (("max_connections", 200), ("innodb_log_buffer_size", 8388608)),
              "redis": (("timeout", 300), ("databases", 32))}


def run(argv: list[str], user: str | None = None) -> None:
    if user:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *argv]
    subprocess.run(argv, check=True, capture_output=True, cwd="/")


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def wait(predicate, timeout: float = 180, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


# -- the engines, directly ---------------------------------------------------------------
class RawPostgres:
    def __init__(self, root: Path):
        self.data, self.sock, self.log = root / "pg", root / "pgsock", root / "pg.log"
        shutil.chown(root, "postgres", "postgres")  # initdb makes the data directory in it
        self.sock.mkdir(mode=0o700)
        shutil.chown(self.sock, "postgres", "postgres")
        run([str(PG_BIN / "initdb"), "-D", str(self.data), "--username=postgres", "--auth-local=trust"], "postgres")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nlisten_addresses = ''\nunix_socket_directories = '{self.sock}'\n")
        run([str(PG_BIN / "pg_ctl"), "start", "-D", str(self.data), "-w", "-s", "-l", str(self.log)], "postgres")

    def sql(self, statement: str) -> None:
        with psycopg.connect(host=str(self.sock), user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(statement)

    def restart(self) -> None:
        # -l: the postmaster's output to a file, not to this process's pipe
        run([str(PG_BIN / "pg_ctl"), "restart", "-D", str(self.data), "-w", "-s", "-m", "fast", "-l", str(self.log)],
            "postgres")
        self.sql("SELECT 1")

    def operations(self, i: int) -> dict:
        return {
            "database create": lambda: self.sql(f"CREATE DATABASE raw{i}"),
            "user create": lambda: self.sql(f"CREATE ROLE raw{i} LOGIN PASSWORD 'Raw-pass-{i}'"),
            "config attach, dynamic": lambda: (self.sql(f"ALTER SYSTEM SET work_mem = '{8 + i}MB'"),
                                               self.sql("SELECT pg_reload_conf()")),
            "config attach, restart-req.": lambda: (self.sql(f"ALTER SYSTEM SET max_connections = {110 + i}"),
                                                    self.restart()),
            "restart": self.restart,
            "flavor resize": lambda: (self.sql(f"ALTER SYSTEM SET shared_buffers = '{128 * (1 + i % 2)}MB'"),
                                      self.restart()),
        }

    def stop(self) -> None:
        run([str(PG_BIN / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-s"], "postgres")


class RawMariadb:
    def __init__(self, root: Path):
        self.root, self.data, self.sock = root, root / "my", root / "my.sock"
        self.cnf = root / "my.cnf"
        self.extra: dict[str, str] = {}
        shutil.chown(root, "mysql", "mysql")  # the server's socket, pid file and error log are in it
        self.data.mkdir()
        shutil.chown(self.data, "mysql", "mysql")
        run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=mysql", "--skip-test-db",
             "--auth-root-authentication-method=socket"])
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        options = {"user": "mysql", "datadir": str(self.data), "socket": str(self.sock), "skip-networking": "ON",
                   "pid-file": str(self.root / "my.pid"), "log-error": str(self.root / "my.err"), **self.extra}
        self.cnf.write_text("[mariadbd]\n" + "".join(f"{k} = {v}\n" for k, v in options.items()))
        self.proc = subprocess.Popen(["mariadbd", f"--defaults-file={self.cnf}"], cwd="/",
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(self._answers, 60, "mariadbd")

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"mariadbd exited: {(self.root / 'my.err').read_text()[-800:]}")
        try:
            pymysql.connect(unix_socket=str(self.sock), user="root").close()
            return True
        except pymysql.MySQLError:
            return False

    def sql(self, statement: str) -> None:
        conn = pymysql.connect(unix_socket=str(self.sock), user="root", autocommit=True)
        with conn.cursor() as cur:
            cur.execute(statement)
        conn.close()

    def restart(self) -> None:
        self.proc.send_signal(signal.SIGTERM)  # a clean shutdown
        self.proc.wait(60)
        self.start()

    def set_and_restart(self, name: str, value: str) -> None:
        self.extra[name] = value
        self.restart()

    def operations(self, i: int) -> dict:
        return {
            "database create": lambda: self.sql(f"CREATE DATABASE raw{i}"),
            "user create": lambda: self.sql(f"CREATE USER 'raw{i}'@'%' IDENTIFIED BY 'Raw-pass-{i}'"),
            "config attach, dynamic": lambda: self.sql(f"SET GLOBAL max_connections = {150 + i}"),
            "config attach, restart-req.": lambda: self.set_and_restart("innodb_log_buffer_size", f"{8 + i}M"),
            "restart": self.restart,
            "flavor resize": lambda: self.set_and_restart("innodb_buffer_pool_size", f"{128 * (1 + i % 2)}M"),
        }

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class RawRedis:
    def __init__(self, root: Path):
        self.root, self.sock, self.conf = root, root / "redis.sock", root / "redis.conf"
        (root / "rd").mkdir()
        self.extra: dict[str, str] = {}
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        options = {"port": "0", "unixsocket": str(self.sock), "dir": str(self.root / "rd"), "appendonly": "yes",
                   "daemonize": "no", **self.extra}
        self.conf.write_text("".join(f"{k} {v}\n" for k, v in options.items()))
        self.proc = subprocess.Popen(["redis-server", str(self.conf)], cwd="/", stdout=subprocess.DEVNULL)
        wait(self._answers, 30, "redis-server")

    def _answers(self) -> bool:
        try:
            return self.client().ping()
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        # no retries with backoff: a server not up yet is asked again by wait(), at once
        return redis.Redis(unix_socket_path=str(self.sock), retry=Retry(NoBackoff(), 0))

    def restart(self) -> None:
        self.client().shutdown()  # saves, as a clean stop does
        self.proc.wait(30)
        self.start()

    def set_and_restart(self, name: str, value: str) -> None:
        self.extra[name] = value
        self.restart()

    def operations(self, i: int) -> dict:
        return {
            "database create": None,
            "user create": lambda: self.client().execute_command("ACL", "SETUSER", f"raw{i}", "on",
                                                                 f">Raw-pass-{i}", "~*", "+@all"),
            "config attach, dynamic": lambda: self.client().config_set("timeout", str(300 + i)),
            "config attach, restart-req.": lambda: self.set_and_restart("databases", str(20 + i)),
            "restart": self.restart,
            "flavor resize": lambda: self.set_and_restart("maxmemory", f"{384 * (1 + i % 2)}mb"),
        }

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


RAW = {"postgresql": RawPostgres, "mariadb": RawMariadb, "redis": RawRedis}


# -- the same through Coffer -----------------------------------------------------------------
class Coffer:
    def __init__(self, client, engine: str, version: str):
        self.client, self.engine = client, engine
        self.inst = client.instances.create(f"bench-{engine}", "d1", volume={"size": 1}, datastore=engine,
                                            datastore_version=version)
        self.flavor = "d1"
        self.wait_status("ACTIVE", 180)
        groups = []
        for (name, value) in PARAMETERS[engine]:
            groups.append(client.configurations.create(f"bench-{engine}-{name}", f'{{"{name}": {value}}}',
                                                       datastore=engine, datastore_version=version).id)
        self.dynamic_group, self.restart_group = groups

    def get(self):
        return self.client.instances.get(self.inst.id)

    def wait_status(self, status: str, timeout: float = 120) -> None:
        def reached():
            current = self.get()
            if current.status == "ERROR":
                raise RuntimeError(f"{self.engine} instance in ERROR: {getattr(current, 'fault', '')}")
            return current.status == status
        wait(reached, timeout, f"{self.engine} {status}")

    def running_configuration(self) -> dict | None:
        """What the engine runs with; None while an action holds the instance (422)."""
        try:
            return self.client.instances.configuration(self.inst.id).configuration
        except trove_exc.UnprocessableEntity:
            return None

    def create_database(self, i: int) -> None:
        self.client.databases.create(self.inst.id, [{"name": f"bench{i}"}])
        wait(lambda: f"bench{i}" in {d.name for d in self.client.databases.list(self.inst.id)}, 60, "database")

    def create_user(self, i: int) -> None:
        self.client.users.create(self.inst.id, [{"name": f"bench{i}", "password": f"Bench-pass-{i}"}])
        wait(lambda: f"bench{i}" in {u.name for u in self.client.users.list(self.inst.id)}, 60, "user")

    def attach_dynamic(self) -> None:
        """Done when the engine reports the group's value (the instance is ACTIVE throughout)."""
        (name, value), _ = PARAMETERS[self.engine]
        self.client.instances.modify(self.inst.id, configuration=self.dynamic_group)
        wait(lambda: str((self.running_configuration() or {}).get(name)) == str(value), 120, "dynamic value")

    def attach_restart_required(self) -> None:
        self.client.instances.modify(self.inst.id, configuration=self.restart_group)
        self.wait_status("RESTART_REQUIRED")
        self.restart()

    def detach(self) -> None:
        """Untimed, between runs: back to no group (and restarted if that needs it)."""
        self.client.instances.modify(self.inst.id)  # {"instance": {}}: detach
        wait(lambda: self.running_configuration() is not None, 120, "detached")
        if self.get().status == "RESTART_REQUIRED":
            self.restart()

    def restart(self) -> None:
        self.client.instances.restart(self.inst.id)  # REBOOT from the moment it answers
        self.wait_status("ACTIVE")

    def resize(self) -> None:
        self.flavor = "d2" if self.flavor == "d1" else "d1"
        self.client.instances.resize_instance(self.inst.id, self.flavor)
        self.wait_status("ACTIVE")

    def operations(self, i: int) -> dict:
        return {
            "database create": None if self.engine == "redis" else lambda: self.create_database(i),
            "user create": lambda: self.create_user(i),
            "config attach, dynamic": self.attach_dynamic,
            "config attach, restart-req.": self.attach_restart_required,
            "restart": self.restart,
            "flavor resize": self.resize,
        }

    def between(self, operation: str) -> None:
        if operation.startswith("config attach"):
            self.detach()


def measure(coffer: Coffer, raw) -> dict[str, tuple[float, float] | None]:
    results = {}
    for operation in OPERATIONS:
        if coffer.operations(0)[operation] is None:
            results[operation] = None
            continue
        coffer_times, raw_times = [], []
        for i in range(RUNS + 1):  # run 0 is the warm-up
            took = timed(coffer.operations(i)[operation])
            coffer.between(operation)
            raw_took = timed(raw.operations(i)[operation])
            if i:
                coffer_times.append(took)
                raw_times.append(raw_took)
        results[operation] = (statistics.median(coffer_times), statistics.median(raw_times))
    return results


def versions(client) -> dict[str, str]:
    def newest(engine: str) -> str:
        names = []
        wait(lambda: names.extend(v.name for v in client.datastore_versions.list(engine)) or names, 60, engine)
        return sorted(names)[-1]
    return {engine: newest(engine) for engine in ENGINES}


def header() -> None:
    print(f"\nDay-2 operations, median of {RUNS} runs after a warm-up, {os.cpu_count()} CPUs. coffer = "
          "python-troveclient → the whole embedded stack → back to ACTIVE with the change in place; direct = the "
          "engine's own client/tools on an engine the bench started")
    print(f"{'engine':<18} {'operation':<28} {'coffer':>9} {'direct':>9} {'ratio':>8}", flush=True)


def rows(engine: str, version: str, measured: dict) -> None:
    for operation, figures in measured.items():
        if figures is None:
            print(f"{engine + ' ' + version:<18} {operation:<28} {'n/a':>9} {'n/a':>9} {'n/a':>8}")
            continue
        coffer_s, direct_s = figures
        print(f"{engine + ' ' + version:<18} {operation:<28} {coffer_s:8.3f}s {direct_s:8.3f}s "
              f"{coffer_s / direct_s:7.1f}x", flush=True)


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="coffer-bench-ops-", dir="/tmp"))
    os.chmod(home, 0o755)
    os.environ["COFFER_HOME"] = str(home)  # the embedded default: SQLite under the state directory
    stack = Stack(home=home, api_port=broker.free_port(), extra_env={
        "COFFER_LOCAL_ADDRESS_RANGE": f"127.{random.randint(20, 250)}.{random.randint(0, 255)}.0/24",
        "COFFER_HOME": str(home),
        "COFFER_RATE_LIMIT_PER_MINUTE": "1000000"})  # the bench polls the API until each operation is done
    raw_root = Path(tempfile.mkdtemp(prefix="coffer-bench-ops-raw-", dir="/tmp"))
    os.chmod(raw_root, 0o755)
    started = time.perf_counter()
    try:
        stack.start()
        token = asyncio.run(_create_token("bench", "member"))
        stack.wait_ready(token, "bench")
        from keystoneauth1 import session
        from keystoneauth1.token_endpoint import Token
        from troveclient.v1 import client as trove
        client = trove.Client(session=session.Session(auth=Token(f"{stack.api_url}/v1.0/bench", token)))
        header()
        for engine, version in versions(client).items():
            directory = raw_root / engine
            directory.mkdir()
            os.chmod(directory, 0o755)
            raw = RAW[engine](directory)
            try:
                rows(engine, version, measure(Coffer(client, engine, version), raw))
            finally:
                raw.stop()
    finally:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(raw_root, ignore_errors=True)

    print(f"({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
