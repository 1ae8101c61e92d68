"""PostgreSQL refuses to run as root: its binaries run as the postgres OS user.
Plain blocking subprocess calls: the agent runs them in a thread, so the engine
can start while the agent is still importing its bus clients."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

ENGINE_USER = "postgres"


class EngineCommandError(Exception):
    pass


def bindir(version: str) -> Path:
    return Path(f"/usr/lib/postgresql/{version}/bin")


def as_engine_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["setpriv", f"--reuid={ENGINE_USER}", f"--regid={ENGINE_USER}", "--init-groups", *argv]
    return argv


def chown_to_engine_user(path: Path) -> None:
    if os.geteuid() != 0:
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
