"""Redis's compiled-in defaults, to put back a parameter a configuration group no
longer sets: Redis cannot reset one by itself. Asked once per host and version of a
throwaway server (it starts in ~20 ms, on a socket of its own, no port) and kept
next to the other engines' templates. Stdlib only."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .engine_user import REDIS_SERVER, EngineCommandError, as_engine_user, chown_to_engine_user
from .run import READY_POLL_SECONDS, resp

START_SECONDS = 10


def compiled_defaults(templates_dir: Path, version: str) -> dict[str, str]:
    path = templates_dir / f"redis-{version}-defaults.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        pass
    defaults = _ask_a_throwaway_server()
    templates_dir.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(json.dumps(defaults, sort_keys=True))
    os.replace(scratch, path)
    return defaults


def _ask_a_throwaway_server() -> dict[str, str]:
    scratch = Path(tempfile.mkdtemp(prefix="coffer-redis-defaults-"))
    chown_to_engine_user(scratch)
    sock_path = scratch / "redis.sock"
    proc = subprocess.Popen(as_engine_user([REDIS_SERVER, "--port", "0", "--unixsocket", str(sock_path),
                                            "--dir", str(scratch)]),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(START_SECONDS)
                    sock.connect(str(sock_path))
                    sock.sendall(resp("CONFIG", "GET", "*"))
                    return _pairs(sock.makefile("rb"))
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise EngineCommandError("a throwaway redis-server did not answer CONFIG GET") from None
                time.sleep(READY_POLL_SECONDS)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(scratch, ignore_errors=True)


def _pairs(reply) -> dict[str, str]:
    """An array reply of names and values (RESP2 bulk strings)."""
    header = reply.readline()
    if not header.startswith(b"*"):
        raise EngineCommandError(f"CONFIG GET answered {header[:200]!r}")
    items = []
    for _ in range(int(header[1:])):
        length = int(reply.readline()[1:])
        items.append(reply.read(length + 2)[:-2].decode())
    return dict(zip(items[::2], items[1::2]))
