"""The embedded compute driver: each instance is an agent process on this machine
(detached, so a provisioner restart leaves it running) with its own directory
under COFFER_HOME/instances and its own loopback address, like a VM's IP. Agents
are forked by the host's agent launcher (agent/launcher.py), which it starts."""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from plumbing.config import coffer_home
from plumbing.procfs import running

from . import local_volumes
from .base import ComputeDriver, DatastoreOffer, LaunchSpec
from .local_engines import installed_engines


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _spawn_forwarder(directory: Path, address: str, port: int, allowed: Path | None = None) -> None:
    """A detached forwarder (forwarder.py) to `directory`/target; back once it listens."""
    log = open(directory / "forwarder.log", "ab")
    extra = [str(allowed)] if allowed else []
    proc = subprocess.Popen([sys.executable, "-m", "services.provisioner.drivers.forwarder", address, str(port),
                             str(directory / "target"), *extra], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    (directory / "forwarder.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as s:
            if s.connect_ex((address, port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"the forwarder on {address}:{port} did not start; see {directory / 'forwarder.log'}")


def public_address() -> str:
    """Where public instances are exposed: COFFER_PUBLIC_ADDRESS, else the address this
    host reaches other machines from (no packet is sent: a UDP socket only picks it)."""
    configured = os.environ.get("COFFER_PUBLIC_ADDRESS", "").strip()
    if configured:
        return configured
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("198.51.100.1", 9))
            address = s.getsockname()[0]
        except OSError:
            address = "127.0.0.1"
    if ipaddress.ip_address(address).is_loopback:
        raise RuntimeError("this host has only loopback addresses, so nothing can be public: set "
                           "COFFER_PUBLIC_ADDRESS to the address public instances should listen on")
    return address


def _free_port(address: str, preferred: int) -> int:
    """`preferred` if nothing listens on it at `address`, else one the system picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, port))
                return s.getsockname()[1]
            except OSError:
                continue
    raise RuntimeError(f"no free port on {address}")


class LocalDriver(ComputeDriver):
    name = "local"

    def __init__(self, home: Path | None = None, address_range: str | None = None):
        self.home = home or coffer_home()
        self.instances_dir = self.home / "instances"
        self.network = ipaddress.ip_network(
            address_range or os.environ.get("COFFER_LOCAL_ADDRESS_RANGE", "127.10.0.0/16"))

    @property
    def launcher_socket(self) -> Path:
        return self.home / "launcher.sock"

    def start(self) -> None:
        self._ensure_launcher()

    def _ensure_launcher(self) -> None:
        if self._launcher_answers():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        log = open(self.home / "logs" / "launcher.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "agent.launcher", str(self.launcher_socket),
                                 str(self.home / "templates")], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        (self.home / "launcher.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._launcher_answers():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"the agent launcher did not start; see {self.home / 'logs' / 'launcher.log'}")

    def _launcher_answers(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(str(self.launcher_socket))
                return True
            except OSError:
                return False

    def _fork_agent(self, config: Path) -> int:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.launcher_socket))
            s.sendall(json.dumps({"config": str(config)}).encode() + b"\n")
            answer = json.loads(s.makefile().readline())
        if "pid" not in answer:
            raise RuntimeError(f"the agent launcher refused: {answer.get('error')}")
        return answer["pid"]

    def offers(self) -> list[DatastoreOffer]:
        return installed_engines()

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
        return pid is not None and running(pid)

    def launch(self, spec: LaunchSpec, kafka_bootstrap: str) -> None:
        if self.is_running(spec.instance_id):
            return
        directory = self.instance_dir(spec.instance_id)
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)  # the engine's OS user must traverse it
        local_volumes.ensure(directory, spec.volume_gb)
        config = {**spec.__dict__, "kafka_bootstrap": kafka_bootstrap,
                  "templates_dir": str(self.home / "templates")}
        tmp = directory / "agent.json.tmp"
        tmp.write_text(json.dumps(config, indent=2))
        tmp.replace(directory / "agent.json")
        self._ensure_launcher()
        pid = self._fork_agent(directory / "agent.json")
        (directory / "agent.pid").write_text(str(pid))

    def _processes_of(self, instance_id: str) -> list[int]:
        """Every process of the instance: the agent (its output goes to the instance's
        agent.log) and the engine (started with the instance's data directory, in a
        session of its own)."""
        marker = str(self.instance_dir(instance_id))
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                if marker.encode() in (proc / "cmdline").read_bytes() or \
                        os.readlink(proc / "fd" / "1").startswith(marker + "/"):
                    pids.append(int(proc.name))
            except OSError:
                continue
        return pids

    def _signal_agent(self, instance_id: str, sig: int, wait: float) -> None:
        pid = self._agent_pid(instance_id)
        if pid is None or not running(pid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:  # it ended meanwhile
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and running(pid):
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
        try:
            local_volumes.release(self.instance_dir(instance_id))
        except local_volumes.VolumeError:
            local_volumes.release(self.instance_dir(instance_id), lazy=True)
        shutil.rmtree(self.instance_dir(instance_id), ignore_errors=True)

    def grow_volume(self, instance_id: str, volume_gb: int) -> None:
        local_volumes.grow(self.instance_dir(instance_id), volume_gb)

    # -- stable endpoints (forwarder.py) and fencing -------------------------------
    def _endpoint_dir(self, set_id: str) -> Path:
        return self.home / "endpoints" / set_id

    def _forwarder_pid(self, set_id: str) -> int | None:
        return _read_pid(self._endpoint_dir(set_id) / "forwarder.pid")

    def _write_target(self, set_id: str, target: tuple[str, int]) -> None:
        _write_atomically(self._endpoint_dir(set_id) / "target", f"{target[0]}:{target[1]}\n")

    def open_endpoint(self, set_id: str, address: str, port: int, target: tuple[str, int]) -> None:
        directory = self._endpoint_dir(set_id)
        directory.mkdir(parents=True, exist_ok=True)
        self._write_target(set_id, target)
        pid = self._forwarder_pid(set_id)
        if pid is not None and running(pid):
            return
        _spawn_forwarder(directory, address, port)

    def move_endpoint(self, set_id: str, target: tuple[str, int]) -> None:
        self._write_target(set_id, target)
        pid = self._forwarder_pid(set_id)
        if pid is not None and running(pid):
            os.kill(pid, signal.SIGHUP)  # open connections (to the old primary) are cut

    def close_endpoint(self, set_id: str) -> None:
        pid = self._forwarder_pid(set_id)
        if pid is not None and running(pid):
            os.kill(pid, signal.SIGTERM)
        shutil.rmtree(self._endpoint_dir(set_id), ignore_errors=True)

    # -- public access (Trove's floating IP): a forwarder on the host's address ------
    # It lives in the instance's directory: deleting or fencing the instance ends it too.
    def _public_dir(self, instance_id: str) -> Path:
        return self.instance_dir(instance_id) / "public"

    def open_public(self, instance_id: str, target: tuple[str, int], allowed_cidrs: list[str]) -> tuple[str, int]:
        directory = self._public_dir(instance_id)
        directory.mkdir(parents=True, exist_ok=True)
        _write_atomically(directory / "target", f"{target[0]}:{target[1]}\n")
        allowed = "".join(f"{c}\n" for c in allowed_cidrs)
        changed = not (directory / "allowed").exists() or (directory / "allowed").read_text() != allowed
        _write_atomically(directory / "allowed", allowed)
        pid = _read_pid(directory / "forwarder.pid")
        if pid is not None and running(pid):
            if changed:
                os.kill(pid, signal.SIGHUP)  # connections admitted under the old networks are cut
            address, port = (directory / "listen").read_text().strip().rsplit(":", 1)
            return address, int(port)
        address = public_address()
        try:  # the same port as before a restart; else the engine's own, if free there
            port = int((directory / "listen").read_text().strip().rsplit(":", 1)[1])
        except (FileNotFoundError, IndexError, ValueError):
            port = _free_port(address, target[1])
        _spawn_forwarder(directory, address, port, allowed=directory / "allowed")
        _write_atomically(directory / "listen", f"{address}:{port}\n")
        return address, port

    def close_public(self, instance_id: str) -> None:
        directory = self._public_dir(instance_id)
        pid = _read_pid(directory / "forwarder.pid")
        if pid is not None and running(pid):
            os.kill(pid, signal.SIGTERM)
        shutil.rmtree(directory, ignore_errors=True)

    def power_off(self, instance_id: str) -> None:
        for pid in self._processes_of(instance_id):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop_all(self) -> None:
        """Stop every agent (and so every engine) but keep the data: used when the
        embedded stack stops; the next start relaunches them."""
        self.stop_launcher()
        for pid_file in [*(self.home / "endpoints").glob("*/forwarder.pid"),
                         *self.instances_dir.glob("*/public/forwarder.pid")]:
            pid = _read_pid(pid_file)
            if pid is not None and running(pid):
                os.kill(pid, signal.SIGTERM)
        if not self.instances_dir.exists():
            return
        for directory in self.instances_dir.iterdir():
            pid = self._agent_pid(directory.name)
            if pid and running(pid):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for directory in self.instances_dir.iterdir():
            pid = self._agent_pid(directory.name)
            while pid and running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        local_volumes.release_all(self.instances_dir)  # the next launch mounts them again

    def stop_launcher(self) -> None:
        try:
            pid = int((self.home / "launcher.pid").read_text())
        except (FileNotFoundError, ValueError):
            return
        if running(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while running(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
