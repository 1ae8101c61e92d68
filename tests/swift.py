"""A real OpenStack Swift for the object-store tests (reference swift.md): swift from
PyPI in a virtualenv of its own (pinned by tests/swift-constraints.txt, never the
project's .venv: it imports eventlet), kept under the system temp dir once per machine.
Each run builds one-replica rings and starts proxy, account, container and object
servers (workers = 0) on free loopback ports, no auth middleware: the store itself is
under test. When Swift cannot be installed the test FAILS saying why."""
from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CONSTRAINTS = Path(__file__).with_name("swift-constraints.txt")
INSTALL_TIMEOUT = 600
SERVERS = ("account", "container", "object", "proxy")

COMMON = """[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
swift_dir = {dir}
devices = {dir}/devices
mount_check = false
disable_fallocate = true
log_name = {name}
"""
PIPELINES = {
    "account": "[pipeline:main]\npipeline = account-server\n[app:account-server]\nuse = egg:swift#account\n",
    "container": "[pipeline:main]\npipeline = container-server\n[app:container-server]\nuse = egg:swift#container\n",
    "object": "[pipeline:main]\npipeline = object-server\n[app:object-server]\nuse = egg:swift#object\n",
    "proxy": ("[pipeline:main]\npipeline = catch_errors healthcheck proxy-logging slo dlo proxy-logging proxy-server\n"
              "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n"
              "[filter:catch_errors]\nuse = egg:swift#catch_errors\n"
              "[filter:healthcheck]\nuse = egg:swift#healthcheck\n"
              "[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n"
              "[filter:slo]\nuse = egg:swift#slo\n[filter:dlo]\nuse = egg:swift#dlo\n"),
}
RINGS = """
import sys
from swift.common.ring import RingBuilder
directory, ports = sys.argv[1], dict(zip(("account", "container", "object"), map(int, sys.argv[2:])))
for kind, port in ports.items():
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
                     "device": "d1", "weight": 1.0})
    builder.rebalance()
    builder.get_ring().save(f"{directory}/{kind}.ring.gz")
"""


def _fail(what: str, output: str = ""):
    pytest.fail(f"cannot run a real Swift: {what}\nIt is installed from PyPI ({CONSTRAINTS.name}) into its own "
                f"virtualenv under {tempfile.gettempdir()} on first use; this machine must reach PyPI.\n"
                + (f"--- output ---\n{output[-3000:]}" if output else ""), pytrace=False)


def _venv() -> Path:
    key = hashlib.sha256(CONSTRAINTS.read_bytes() + sys.version.encode()).hexdigest()[:12]
    venv = Path(tempfile.gettempdir()) / f"coffer-swift-{key}"
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install per machine, whoever asks first
        if not (venv / ".installed").exists():
            for cmd in ([sys.executable, "-m", "venv", "--clear", str(venv)],
                        [str(venv / "bin/pip"), "install", "-q", "-c", str(CONSTRAINTS), "swift"]):
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
                if out.returncode:
                    _fail(f"{' '.join(cmd[:3])} failed", out.stdout + out.stderr)
            (venv / ".installed").touch()
    return venv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Swift:
    directory: Path
    ports: dict[str, int]
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy']}/v1/AUTH_test"

    def stop(self) -> None:
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start(directory: Path) -> Swift:
    venv = _venv()
    # the ports are the rings': fresh ones each run (a second Swift on taken ports
    # would start without error, SO_REUSEPORT)
    swift = Swift(directory, {name: _free_port() for name in SERVERS})
    (directory / "devices/d1").mkdir(parents=True)
    (directory / "swift.conf").write_text(
        "[swift-hash]\nswift_hash_path_suffix = coffer-tests\n[storage-policy:0]\nname = gold\ndefault = yes\n")
    out = subprocess.run([str(venv / "bin/python"), "-c", RINGS, str(directory),
                          *(str(swift.ports[k]) for k in ("account", "container", "object"))],
                         capture_output=True, text=True, timeout=60)
    if out.returncode:
        _fail("building the rings failed", out.stderr)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for name in SERVERS:
        conf = directory / f"{name}.conf"
        conf.write_text(COMMON.format(port=swift.ports[name], dir=directory, name=name) + PIPELINES[name])
        log = open(directory / f"{name}.log", "wb")
        swift.processes.append(subprocess.Popen([str(venv / f"bin/swift-{name}-server"), str(conf), "-v"],
                                                stdout=log, stderr=subprocess.STDOUT, env=env))
    deadline = time.monotonic() + 30
    while True:  # up once the proxy can make a container: every server answers then
        try:
            urllib.request.urlopen(urllib.request.Request(f"{swift.url}/coffer-probe", method="PUT"), timeout=2)
            break
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline or any(p.poll() is not None for p in swift.processes):
                swift.stop()
                logs = "".join((directory / f"{n}.log").read_text(errors="replace")[-800:] for n in SERVERS)
                _fail("the servers did not come up", logs)
            time.sleep(0.1)
    return swift
