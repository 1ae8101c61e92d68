"""Start, adopt and stop redis-server. Blocking and stdlib only."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from plumbing.procfs import running

from .engine_user import REDIS_SERVER, EngineCommandError, as_engine_user
from .layout import ADMIN_USER, Layout

READY_POLL_SECONDS = 0.01
# the servers this process started, by config file: waited for, so none lingers as a zombie
_children: dict[str, subprocess.Popen] = {}


def server_pid(layout: Layout) -> int | None:
    """The pid of this instance's redis-server if it is running: the pidfile names
    it and its command line names this instance's config file (a stale pidfile's
    pid may belong to another process by now)."""
    try:
        pid = int(layout.pidfile.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    if os.fsencode(layout.conf) not in cmdline or not running(pid):
        return None
    return pid


def _log_tail(layout: Layout) -> str:
    try:
        return layout.log.read_text(errors="replace")[-800:].strip()
    except OSError:
        return ""


def resp(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def _connect(layout: Layout, address: str, port: int, timeout: float) -> socket.socket:
    if layout.socket is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = str(layout.socket)
    else:
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        target = (address, port)
    sock.settimeout(timeout)
    try:
        sock.connect(target)
    except OSError:
        sock.close()
        raise
    return sock


def ping(layout: Layout, address: str, port: int, password: str, timeout: float = 2) -> str:
    """'' when the server answers PING as the admin user; 'LOADING' while it loads
    its data; raises OSError when nothing listens yet, EngineCommandError when it
    refuses the admin user."""
    with _connect(layout, address, port, timeout) as sock:
        sock.sendall(resp("AUTH", ADMIN_USER, password) + resp("PING"))
        replies = sock.makefile("rb")
        auth, pong = replies.readline().strip(), replies.readline().strip()
    if not auth or not pong:
        raise ConnectionResetError("the connection closed before the replies")
    if auth.startswith(b"-LOADING"):
        return "LOADING"
    if auth != b"+OK":
        # the reply names the error only (WRONGPASS ...), never the password
        raise EngineCommandError(f"Redis refused the agent's admin user: {auth.decode(errors='replace')[:200]}")
    if pong == b"+PONG":
        return ""
    if pong.startswith(b"-LOADING"):
        return "LOADING"
    raise EngineCommandError(f"Redis answered PING with {pong.decode(errors='replace')[:200]}")


def start(layout: Layout) -> subprocess.Popen:
    """redis-server as the redis OS user, detached in a session of its own. Its
    stdout and stderr go to its log too, so a fatal config error is in the tail."""
    with open(layout.log, "ab") as log:
        proc = subprocess.Popen(as_engine_user([REDIS_SERVER, str(layout.conf)]), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, cwd="/", start_new_session=True, close_fds=True)
    _children[str(layout.conf)] = proc
    return proc


def wait_ready(layout: Layout, address: str, port: int, password: str, proc: subprocess.Popen | None,
               timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ping(layout, address, port, password) == "":
                return
        except OSError:
            pass  # not listening yet
        if proc is not None and proc.poll() is not None:
            raise EngineCommandError(f"redis-server exited with {proc.returncode}: {_log_tail(layout)}")
        if proc is None and server_pid(layout) is None:
            raise EngineCommandError(f"redis-server is no longer running: {_log_tail(layout)}")
        time.sleep(READY_POLL_SECONDS)
    raise EngineCommandError(f"Redis did not answer PING within {timeout:.0f} s: {_log_tail(layout)}")


def ensure_running(layout: Layout, address: str, port: int, password: str, timeout: float = 60) -> None:
    """Adopt the server a previous agent started, else start one; then wait until
    it answers PING."""
    proc = None if server_pid(layout) is not None else start(layout)
    wait_ready(layout, address, port, password, proc, timeout)


def _gone(pid: int, child: subprocess.Popen | None) -> bool:
    if child is not None and child.pid == pid:
        return child.poll() is not None  # reaps it
    return not running(pid)


def stop(layout: Layout, timeout: float = 30) -> None:
    """SIGTERM: Redis shuts down as on SHUTDOWN (flushes the AOF, saves); wait until it is gone."""
    child = _children.get(str(layout.conf))
    pid = server_pid(layout)
    if pid is None and child is not None and child.poll() is None:
        pid = child.pid  # started but its pidfile not written yet
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while not _gone(pid, child):
        if time.monotonic() > deadline:
            raise EngineCommandError(f"redis-server (pid {pid}) did not stop within {timeout:.0f} s")
        time.sleep(READY_POLL_SECONDS)
    _children.pop(str(layout.conf), None)
