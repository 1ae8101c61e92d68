"""Engines run as their own OS user, never as root: the postmaster refuses root,
mariadbd must be told to switch, and redis-server simply should not have it.
Plain blocking calls, stdlib only: the agent runs them in a thread, so an engine
can start while the agent is still importing its bus clients."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path


class EngineCommandError(Exception):
    pass


def running_as_root() -> bool:
    return os.geteuid() == 0


def run(argv: list[str], timeout: float = 120) -> str:
    """Run a command to its end; its output, or EngineCommandError with the output's tail."""
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              cwd="/", timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EngineCommandError(f"{Path(argv[0]).name} timed out after {timeout:.0f} s") from None
    text = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        raise EngineCommandError(f"{Path(argv[0]).name} exited {done.returncode}: {text.strip()[-800:]}")
    return text


class EngineUser:
    """One engine's OS user: commands run as it and files handed to it when the
    agent is root (an agent that is not root runs everything as itself)."""

    def __init__(self, name: str):
        self.name = name

    def argv(self, argv: list[str]) -> list[str]:
        if running_as_root():
            return ["setpriv", f"--reuid={self.name}", f"--regid={self.name}", "--init-groups", *argv]
        return argv

    def chown(self, path: Path) -> None:
        if running_as_root():
            pw = pwd.getpwnam(self.name)
            shutil.chown(path, pw.pw_uid, pw.pw_gid)

    def run(self, argv: list[str], timeout: float = 120) -> str:
        return run(self.argv(argv), timeout)
