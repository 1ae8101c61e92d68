"""The local host's agent launcher: a fork server. It imports the agent's code
once, makes the engines' template data directories, then forks one agent per
instance on request over a Unix socket. A forked agent starts in milliseconds
instead of paying ~0.5 s of interpreter start and imports, and it runs in a
session of its own, so it outlives both the launcher and the provisioner.

Protocol: one JSON line per connection, {"config": "<instance dir>/agent.json"};
the answer is {"pid": N} or {"error": "..."}."""
from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import socket
import sys
from pathlib import Path

# Imported before any fork so that children start warm. No threads and no event
# loop may exist in this process: fork copies only the calling thread.
import agent.runtime  # noqa: F401
from agent.manager import PLUGINS

PLUGIN_MODULES = {name: (importlib.import_module(f"{package}.manager"), importlib.import_module(f"{package}.bootstrap"))
                  for name, package in PLUGINS.items()}

PR_SET_NAME = 15


def _warm_templates(templates_dir: Path) -> None:
    pid = os.fork()
    if pid == 0:  # in a child, so the launcher answers at once
        # with SIGCHLD ignored, subprocess would take every exit status for 0
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        code = 0
        for name, (_manager, bootstrap) in PLUGIN_MODULES.items():
            if not hasattr(bootstrap, "warm_templates"):
                continue
            try:
                bootstrap.warm_templates(templates_dir)
            except Exception as exc:  # an agent makes it itself later, and reports a failure
                print(f"templates for {name} not made: {exc}", file=sys.stderr)
                code = 1
        os._exit(code)


def _run_agent(config_path: str) -> None:
    """In the forked child: detach, log to the instance directory, become the agent."""
    os.setsid()
    ctypes.CDLL("libc.so.6").prctl(PR_SET_NAME, b"coffer-agent", 0, 0, 0)  # what ps and top show
    directory = Path(config_path).parent
    log = os.open(directory / "agent.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.chdir(directory)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.argv = [sys.argv[0], config_path]
    from agent.__main__ import main
    try:
        main()
        code = 0
    except BaseException:  # noqa: BLE001 - the exit code tells the driver
        import traceback
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _answer(server: socket.socket, conn: socket.socket) -> None:
    line = conn.makefile().readline()
    if not line:
        return
    try:
        request = json.loads(line)
        config_path = str(Path(request["config"]).resolve())
        if not Path(config_path).is_file():
            raise FileNotFoundError(config_path)
    except (ValueError, KeyError, TypeError, OSError) as exc:
        conn.sendall(json.dumps({"error": f"bad launch request: {exc}"}).encode() + b"\n")
        return
    pid = os.fork()
    if pid == 0:
        server.close()
        conn.close()
        _run_agent(config_path)
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def serve(socket_path: Path, templates_dir: Path) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps exited agents
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _warm_templates(templates_dir)
    socket_path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(socket_path))
    os.chmod(socket_path, 0o600)
    server.listen(64)
    try:
        while True:
            conn, _ = server.accept()
            with conn:
                try:
                    _answer(server, conn)
                except OSError:
                    pass  # the caller went away (a liveness probe does just that)
    finally:
        server.close()
        socket_path.unlink(missing_ok=True)


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]))
