"""mariadbd refuses to run as root (unless told to switch user): its binaries run
as the mysql OS user. Plain blocking subprocess calls, stdlib only: the agent runs
them in a thread, so the engine can start while the agent imports its bus clients."""
from __future__ import annotations

import os
import pwd
import re
from pathlib import Path

from ...engine_user import EngineCommandError, EngineUser, running_as_root  # noqa: F401 - the plugin's names
from ...engine_user import run as run_as_agent

ENGINE = EngineUser("mysql")
ENGINE_USER = ENGINE.name
as_engine_user, chown_to_engine_user, run = ENGINE.argv, ENGINE.chown, ENGINE.run
MARIADBD = Path("/usr/sbin/mariadbd")
INSTALL_DB = Path("/usr/bin/mariadb-install-db")


def admin_user() -> str:
    """The database account the agent administers the engine with: it logs in over
    the instance's socket by unix_socket authentication, so it is named after the
    agent's OS user (root in any real deployment)."""
    return "root" if running_as_root() else pwd.getpwuid(os.geteuid()).pw_name


def server_version() -> str | None:
    """The full version of the installed server, e.g. '10.11.19'; None if absent."""
    if not MARIADBD.exists():
        return None
    m = re.search(r"Ver (\d+\.\d+\.\d+)", run_as_agent([str(MARIADBD), "--version"], timeout=30))
    return m.group(1) if m else None
