"""Whether a process runs, from /proc: shared by the agent (its engine's server) and
the local compute driver (agents and forwarders)."""
from __future__ import annotations

from pathlib import Path


def running(pid: int) -> bool:
    """Alive and neither a zombie (a child nobody reaped yet) nor dead; a process
    ending while /proc is read (ESRCH) is not running."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
