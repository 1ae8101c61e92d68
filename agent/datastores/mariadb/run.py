"""Start, adopt and stop mariadbd. Stdlib only (it runs in bootstrap's thread)."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from plumbing.procfs import running

from . import probe
from .conf import Paths
from .engine_user import MARIADBD, EngineCommandError, admin_user, as_engine_user

READY_POLL_SECONDS = 0.01


def _is_ours(pid: int, paths: Paths) -> bool:
    """The process is a mariadbd started with this instance's option file (and
    not another process that has reused a stale pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return len(argv) > 1 and argv[1] == f"--defaults-file={paths.options}".encode()


def server_pid(paths: Paths) -> int | None:
    """The instance's running server: from its pid file, or, early in its start
    before it writes one, by its command line."""
    try:
        pid = int(paths.pid_file.read_text().split()[0])
        if running(pid) and _is_ours(pid, paths):
            return pid
    except (OSError, ValueError, IndexError):
        pass
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and _is_ours(int(proc.name), paths) and running(int(proc.name)):
            return int(proc.name)
    return None


def _tail(log: Path) -> str:
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 1200))
            return f.read().decode(errors="replace").strip()[-1200:]
    except OSError:
        return ""


def _launch(paths: Paths) -> subprocess.Popen:
    with open(paths.log, "ab") as log:
        # its own session: it outlives the agent, and no signal to the agent's group reaches it
        proc = subprocess.Popen(as_engine_user([str(MARIADBD), f"--defaults-file={paths.options}"]),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd="/",
                                start_new_session=True)
    # reap it when it ends, so a stopped server leaves no zombie behind while the agent lives
    threading.Thread(target=proc.wait, name="mariadbd-reaper", daemon=True).start()
    return proc


def start(paths: Paths, timeout: float = 60) -> None:
    """Start the server unless it is already running (a previous agent's is adopted),
    and return once it accepts connections on its socket."""
    pid, adopted = server_pid(paths), True
    if pid is None:
        pid, adopted = _launch(paths).pid, False
    user, deadline = admin_user(), time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            probe.login(str(paths.socket), user, timeout=max(0.1, min(2.0, deadline - time.monotonic())))
            return
        except probe.ServerError as exc:
            if exc.code in probe.ACCESS_DENIED:
                raise EngineCommandError(f"MariaDB refuses the agent's login as {user} over its socket: {exc}")
            last = str(exc)  # e.g. too many connections, or shutting down: try again
        except OSError as exc:  # no socket yet, or not answering yet
            last = str(exc) or type(exc).__name__
        if not running(pid):
            if not adopted:
                break
            pid, adopted = _launch(paths).pid, False  # the adopted server was on its way out
        time.sleep(READY_POLL_SECONDS)
    state = "exited" if not running(pid) else f"not accepting connections after {timeout:.0f} s ({last})"
    raise EngineCommandError(f"MariaDB {state}; the end of {paths.log.name}:\n{_tail(paths.log)}")


def stop(paths: Paths, timeout: float = 60) -> None:
    """A clean shutdown (SIGTERM is mariadbd's), waited for."""
    pid = server_pid(paths)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while running(pid):
        if time.monotonic() > deadline:
            raise EngineCommandError(f"MariaDB (pid {pid}) did not shut down in {timeout:.0f} s")
        time.sleep(READY_POLL_SECONDS)
