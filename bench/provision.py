"""Request → ACTIVE/HEALTHY for PostgreSQL instances, 10 one after another and 10
at once, next to the raw limit measured in the same run (initdb + start + first
query, no Coffer). Run with the project's venv: .venv/bin/python bench/provision.py"""
from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from coffer.cli import _create_token  # noqa: E402
from coffer.stack import Stack  # noqa: E402
from plumbing import broker  # noqa: E402

RUNS = 10
PG_VERSION = sorted(p.name for p in Path("/usr/lib/postgresql").iterdir())[-1]
BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")


def as_postgres(*argv: str) -> list[str]:
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]


def raw_once(root: Path, i: int) -> float:
    """initdb (SCRAM) + pg_ctl start -w + first query; the floor without Coffer."""
    data, sock = root / f"raw{i}", root / f"sock{i}"
    sock.mkdir(mode=0o700)
    shutil.chown(sock, "postgres", "postgres")
    address = f"127.9.{random.randint(1, 250)}.{random.randint(2, 250)}"
    started = time.perf_counter()
    subprocess.run(as_postgres(str(BIN / "initdb"), "-D", str(data), "--username=postgres",
                               "--auth-local=trust", "--auth-host=scram-sha-256"), check=True,
                   capture_output=True, cwd="/")
    subprocess.run(as_postgres(str(BIN / "pg_ctl"), "start", "-D", str(data), "-w", "-s", "-l",
                               str(root / f"raw{i}.log"), "-o",
                               f"-c listen_addresses={address} -c unix_socket_directories={sock}"),
                   check=True, capture_output=True, cwd="/")
    with psycopg.connect(host=str(sock), user="postgres", dbname="postgres") as conn:
        conn.execute("SELECT 1")
    elapsed = time.perf_counter() - started
    subprocess.run(as_postgres(str(BIN / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-s"),
                   check=True, capture_output=True, cwd="/")
    return elapsed


def raw_limit(runs: int, at_once: bool) -> list[float]:
    root = Path(tempfile.mkdtemp(prefix="coffer-bench-raw-", dir="/tmp"))
    os.chmod(root, 0o755)
    shutil.chown(root, "postgres", "postgres")
    try:
        if at_once:
            with ThreadPoolExecutor(runs) as pool:
                return list(pool.map(lambda i: raw_once(root, i), range(runs)))
        return [raw_once(root, i) for i in range(runs)]
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Client:
    def __init__(self, base: str, token: str):
        self.base, self.session = base, requests.Session()
        self.session.headers["X-Auth-Token"] = token

    def create(self, name: str) -> str:
        r = self.session.post(f"{self.base}/instances", json={"instance": {
            "name": name, "flavorRef": "d1", "volume": {"size": 1},
            "datastore": {"type": "postgresql", "version": PG_VERSION},
            "databases": [{"name": "appdb"}],
            "users": [{"name": "app", "password": "S3cret-pass", "databases": [{"name": "appdb"}]}]}})
        r.raise_for_status()
        return r.json()["instance"]["id"]

    def time_to_healthy(self, name: str) -> float:
        started = time.perf_counter()
        instance_id = self.create(name)
        while True:
            inst = self.session.get(f"{self.base}/instances/{instance_id}").json()["instance"]
            if inst["status"] == "ERROR":
                raise RuntimeError(f"{name} failed: {inst.get('fault')}")
            if inst["status"] == "ACTIVE" and inst["operating_status"] == "HEALTHY":
                return time.perf_counter() - started
            time.sleep(0.01)

    def delete_all(self) -> None:
        for inst in self.session.get(f"{self.base}/instances").json()["instances"]:
            self.session.delete(f"{self.base}/instances/{inst['id']}")
        while self.session.get(f"{self.base}/instances").json()["instances"]:
            time.sleep(0.2)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(label: str, values: list[float], raw: float) -> None:
    med = statistics.median(values)
    print(f"{label:<28} median {med:6.3f} s   p95 {p95(values):6.3f} s   median/raw {med / raw:5.2f}x")


def main() -> None:
    raw = raw_limit(5, at_once=False)
    raw_med = statistics.median(raw)
    raw_burst = raw_limit(RUNS, at_once=True)
    raw_burst_med = statistics.median(raw_burst)
    home = Path(tempfile.mkdtemp(prefix="coffer-bench-", dir="/tmp"))
    os.chmod(home, 0o755)
    os.environ["COFFER_HOME"] = str(home)  # the embedded default: SQLite under the state directory
    stack = Stack(home=home, api_port=broker.free_port(), extra_env={
        "COFFER_LOCAL_ADDRESS_RANGE": f"127.{random.randint(20, 250)}.{random.randint(0, 255)}.0/24",
        "COFFER_HOME": str(home)})
    try:
        stack.start()
        token = asyncio.run(_create_token("bench", "member"))
        stack.wait_ready(token, "bench")
        client = Client(f"{stack.api_url}/v1.0/bench", token)
        client.time_to_healthy("warm-up")  # makes the template data directory once
        client.delete_all()
        sequential = [client.time_to_healthy(f"seq{i}") for i in range(RUNS)]
        client.delete_all()
        with ThreadPoolExecutor(RUNS) as pool:
            concurrent = list(pool.map(lambda i: Client(client.base, token).time_to_healthy(f"par{i}"), range(RUNS)))
        client.delete_all()
    finally:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)

    print(f"\nPostgreSQL {PG_VERSION}, {os.cpu_count()} CPUs; request → ACTIVE/HEALTHY through every service")
    print(f"{'raw, one after another':<28} median {raw_med:6.3f} s   p95 {p95(raw):6.3f} s   "
          "(baseline: initdb + start + first query, no Coffer)")
    report("coffer, one after another", sequential, raw_med)
    print(f"{f'raw, {RUNS} at once':<28} median {raw_burst_med:6.3f} s   p95 {p95(raw_burst):6.3f} s   (baseline)")
    report(f"coffer, {RUNS} at once", concurrent, raw_burst_med)
    seq_med = statistics.median(sequential)
    print(f"target: median ≤ 1.5x raw and ≤ 2 s → {'met' if seq_med <= 1.5 * raw_med and seq_med <= 2 else 'NOT met'}"
          f" (sequential median {seq_med:.3f} s)")


if __name__ == "__main__":
    main()
