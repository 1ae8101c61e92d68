"""mariadbd refuses to run as root (unless told to switch user): its binaries run
as the mysql OS user. Plain blocking subprocess calls, stdlib only: the agent runs
them in a thread, so the engine can start while the agent imports its bus clients."""
from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

ENGINE_USER = "mysql"
MARIADBD = Path("/usr/sbin/mariadbd")
INSTALL_DB = Path("/usr/bin/mariadb-install-db")


class EngineCommandError(Exception):
    pass


def running_as_root() -> bool:
    return os.geteuid() == 0


def admin_user() -> str:
    """The database account the agent administers the engine with: it logs in over
    the instance's socket by unix_socket authentication, so it is named after the
    agent's OS user (root in any real deployment)."""
    return "root" if running_as_root() else pwd.getpwuid(os.geteuid()).pw_name


def as_engine_user(argv: list[str]) -> list[str]:
    if running_as_root():
        return ["setpriv", f"--reuid={ENGINE_USER}", f"--regid={ENGINE_USER}", "--init-groups", *argv]
    return argv


def chown_to_engine_user(path: Path) -> None:
    if not running_as_root():
        return
    pw = pwd.getpwnam(ENGINE_USER)
    shutil.chown(path, pw.pw_uid, pw.pw_gid)


def run(argv: list[str], timeout: float = 120, as_engine: bool = True) -> str:
    try:
        done = subprocess.run(as_engine_user(argv) if as_engine else argv, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd="/", timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EngineCommandError(f"{Path(argv[0]).name} timed out after {timeout:.0f} s")
    text = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        raise EngineCommandError(f"{Path(argv[0]).name} exited {done.returncode}: {text.strip()[-800:]}")
    return text


def server_version() -> str | None:
    """The full version of the installed server, e.g. '10.11.19'; None if absent."""
    if not MARIADBD.exists():
        return None
    m = re.search(r"Ver (\d+\.\d+\.\d+)", run([str(MARIADBD), "--version"], timeout=30, as_engine=False))
    return m.group(1) if m else None
