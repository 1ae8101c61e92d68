"""redis-server never runs as root: it runs as the redis OS user. Plain blocking
calls: the agent runs them in a thread, so the engine can start while the agent is
still importing its bus clients."""
from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

ENGINE_USER = "redis"
REDIS_SERVER = "/usr/bin/redis-server"


class EngineCommandError(Exception):
    pass


def as_engine_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["setpriv", f"--reuid={ENGINE_USER}", f"--regid={ENGINE_USER}", "--init-groups", *argv]
    return argv


def chown_to_engine_user(path: Path) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(ENGINE_USER)
    shutil.chown(path, pw.pw_uid, pw.pw_gid)
