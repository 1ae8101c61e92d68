"""The embedded stack: the broker, then every service as its own process.
Stopping it stops the services, then the instances' agents (data is kept)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from plumbing import broker
from plumbing.config import coffer_home
from plumbing.lifetime import die_with_parent

SERVICES = ["api", "scheduler", "provisioner", "backup", "monitor", "notifier"]


@dataclass
class Stack:
    home: Path = field(default_factory=coffer_home)
    api_port: int = field(default_factory=lambda: int(os.environ.get("COFFER_API_PORT", "8779")))
    kafka_port: int | None = None
    extra_env: dict = field(default_factory=dict)
    broker_proc: subprocess.Popen | None = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict:
        env = {**os.environ, "COFFER_HOME": str(self.home), "COFFER_API_PORT": str(self.api_port),
               "PYTHONUNBUFFERED": "1", **self.extra_env}
        env["COFFER_KAFKA_BOOTSTRAP"] = self.bootstrap
        return env

    @property
    def bootstrap(self) -> str:
        return self.extra_env.get("COFFER_KAFKA_BOOTSTRAP") or os.environ.get(
            "COFFER_KAFKA_BOOTSTRAP") or f"127.0.0.1:{self.kafka_port}"

    def start_broker(self) -> None:
        if os.environ.get("COFFER_KAFKA_BOOTSTRAP") or self.extra_env.get("COFFER_KAFKA_BOOTSTRAP"):
            return  # an external Kafka
        self.home.mkdir(parents=True, exist_ok=True)
        port = self.kafka_port or int(os.environ.get("COFFER_KAFKA_PORT", "9092"))
        if broker.port_answers("127.0.0.1", port):
            port = broker.free_port()
        self.kafka_port = port
        (self.home / "logs").mkdir(exist_ok=True)
        self.broker_proc = broker.start(port, log_path=self.home / "logs" / "broker.log")

    def start_service(self, name: str) -> subprocess.Popen:
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = open(logs / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=self.env(),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=die_with_parent)
        self.procs[name] = proc
        return proc

    def start(self, services=SERVICES) -> None:
        self.start_broker()
        for name in services:
            self.start_service(name)

    def wait_ready(self, token: str, project: str, timeout: float = 90.0) -> dict[str, list[str]]:
        """Ready = the API answers and knows at least one datastore version; returns
        the version names of each datastore."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                req = urllib.request.Request(f"{self.api_url}/v1.0/{project}/datastores",
                                             headers={"X-Auth-Token": token})
                with urllib.request.urlopen(req, timeout=2) as resp:
                    datastores = json.load(resp)["datastores"]
                if any(d["versions"] for d in datastores):
                    return {d["name"]: [v["name"] for v in d["versions"]] for d in datastores}
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the stack was not ready within {timeout:.0f} s; see {self.home / 'logs'}")

    def wait_ready_api(self, token: str, project: str, timeout: float = 60.0) -> None:
        """Ready enough when only some services run: the API answers an authenticated call."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                req = urllib.request.Request(f"{self.api_url}/v1.0/{project}/flavors",
                                             headers={"X-Auth-Token": token})
                with urllib.request.urlopen(req, timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        raise TimeoutError(f"the API did not answer within {timeout:.0f} s")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"service {name} exited with code {proc.returncode}; "
                                   f"see {self.home / 'logs' / (name + '.log')}")

    def stop_service(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self, stop_instances: bool = True) -> None:
        for proc in self.procs.values():  # all at once: each takes about a second to leave its groups
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name in list(self.procs):
            self.stop_service(name)
        if stop_instances:
            from services.provisioner.drivers.local import LocalDriver
            LocalDriver(self.home).stop_all()
        if self.broker_proc is not None:
            self.broker_proc.kill()  # memory storage: nothing to flush, and it ignores SIGTERM for seconds
            self.broker_proc.wait()
            self.broker_proc = None
