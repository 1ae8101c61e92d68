"""The embedded compute driver: each instance is an agent process on this machine
(detached, so a provisioner restart leaves it running) with its own directory
under COFFER_HOME/instances and its own loopback address, like a VM's IP."""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from plumbing.config import coffer_home

from .base import ComputeDriver, DatastoreOffer, LaunchSpec

ENGINE_PORTS = {"postgresql": 5432}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def postgres_offers(root: Path = Path("/usr/lib/postgresql")) -> list[DatastoreOffer]:
    offers = []
    for binary in sorted(root.glob("*/bin/postgres")):
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout
        m = re.search(r"\(PostgreSQL\) (\d+(?:\.\d+)?)", out)
        if m:
            offers.append(DatastoreOffer("postgresql", binary.parts[-3], m.group(1), "postgresql"))
    return offers


class LocalDriver(ComputeDriver):
    name = "local"

    def __init__(self, home: Path | None = None, address_range: str | None = None):
        self.home = home or coffer_home()
        self.instances_dir = self.home / "instances"
        self.network = ipaddress.ip_network(
            address_range or os.environ.get("COFFER_LOCAL_ADDRESS_RANGE", "127.10.0.0/16"))

    def offers(self) -> list[DatastoreOffer]:
        return postgres_offers()

    def allocate_address(self, taken: set[str]) -> str:
        for address in self.network.hosts():
            if int(address) & 0xFF in (0, 1, 255):
                continue  # keep .0/.1/.255 free: they read like network, gateway, broadcast
            if str(address) not in taken:
                return str(address)
        raise RuntimeError(f"address range {self.network} is exhausted")

    def instance_dir(self, instance_id: str) -> Path:
        return self.instances_dir / instance_id

    def _agent_pid(self, instance_id: str) -> int | None:
        try:
            return int((self.instance_dir(instance_id) / "agent.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def is_running(self, instance_id: str) -> bool:
        pid = self._agent_pid(instance_id)
        return pid is not None and _pid_alive(pid)

    def launch(self, spec: LaunchSpec, kafka_bootstrap: str) -> None:
        if self.is_running(spec.instance_id):
            return
        directory = self.instance_dir(spec.instance_id)
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)  # the engine's OS user must traverse it
        config = {**spec.__dict__, "kafka_bootstrap": kafka_bootstrap,
                  "templates_dir": str(self.home / "templates")}
        tmp = directory / "agent.json.tmp"
        tmp.write_text(json.dumps(config, indent=2))
        tmp.replace(directory / "agent.json")
        log = open(directory / "agent.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "agent", str(directory / "agent.json")],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=directory)
        (directory / "agent.pid").write_text(str(proc.pid))

    def _processes_of(self, instance_id: str) -> list[int]:
        """Every process whose command line names the instance directory: the agent
        and the engine it started (which runs in a session of its own)."""
        marker = str(self.instance_dir(instance_id)).encode()
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if marker in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
        return [p for p in pids if p != os.getpid()]

    def _signal_agent(self, instance_id: str, sig: int, wait: float) -> None:
        pid = self._agent_pid(instance_id)
        if pid is None or not _pid_alive(pid):
            return
        os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.05)

    def destroy(self, instance_id: str) -> None:
        # the agent stops its engine cleanly on SIGTERM; whatever survives is killed
        self._signal_agent(instance_id, signal.SIGTERM, wait=15)
        for pid in self._processes_of(instance_id):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while self._processes_of(instance_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.instance_dir(instance_id), ignore_errors=True)

    def stop_all(self) -> None:
        """Stop every agent (and so every engine) but keep the data: used when the
        embedded stack stops; the next start relaunches them."""
        if not self.instances_dir.exists():
            return
        for directory in self.instances_dir.iterdir():
            pid = self._agent_pid(directory.name)
            if pid and _pid_alive(pid):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for directory in self.instances_dir.iterdir():
            pid = self._agent_pid(directory.name)
            while pid and _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
