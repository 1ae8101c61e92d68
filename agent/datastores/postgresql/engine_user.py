"""PostgreSQL refuses to run as root: its binaries run as the postgres OS user."""
from __future__ import annotations

import asyncio
import os
import pwd
import shutil
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


async def run(argv: list[str], timeout: float = 120, as_engine: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        *(as_engine_user(argv) if as_engine else argv), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL, cwd="/")
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        raise EngineCommandError(f"{Path(argv[0]).name} timed out after {timeout:.0f} s")
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise EngineCommandError(f"{Path(argv[0]).name} exited {proc.returncode}: {text.strip()[-800:]}")
    return text
