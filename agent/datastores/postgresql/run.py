"""Start, adopt and stop the postmaster."""
from __future__ import annotations

import time
from pathlib import Path

from plumbing.procfs import running

from .engine_user import EngineCommandError, bindir, run

READY_POLL_SECONDS = 0.01


def postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _status_line(data: Path) -> str:
    """Line 8 of postmaster.pid: 'ready' once the postmaster accepts connections."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return ""
    return lines[7].strip() if len(lines) > 7 else ""


def is_running(data: Path) -> bool:
    pid = postmaster_pid(data)
    return pid is not None and running(pid)


def start(version: str, data: Path, log: Path, timeout: float = 60) -> None:
    if is_running(data) and _status_line(data) == "ready":
        return  # adopt the postmaster a previous agent started
    if not is_running(data):
        run([str(bindir(version) / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-W", "-s"], timeout=30)
    # pg_ctl -w polls every 100 ms; reading the status line every 10 ms is as exact and sooner
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _status_line(data) == "ready":
            return
        pid = postmaster_pid(data)
        if pid is not None and not running(pid):
            break
        time.sleep(READY_POLL_SECONDS)
    tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
    raise EngineCommandError(f"PostgreSQL did not become ready: {tail.strip()}")


def stop(version: str, data: Path) -> None:
    if is_running(data):
        run([str(bindir(version) / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w", "-t", "30", "-s"],
            timeout=40)
