"""Start, adopt and stop the postmaster with pg_ctl."""
from __future__ import annotations

from pathlib import Path

from .engine_user import EngineCommandError, bindir, run


def postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


async def is_running(version: str, data: Path) -> bool:
    try:
        await run([str(bindir(version) / "pg_ctl"), "status", "-D", str(data)], timeout=10)
        return True
    except EngineCommandError:
        return False


async def start(version: str, data: Path, log: Path) -> None:
    if await is_running(version, data):
        return  # adopt the postmaster a previous agent started
    await run([str(bindir(version) / "pg_ctl"), "start", "-D", str(data), "-l", str(log),
               "-w", "-t", "60", "-s"], timeout=70)


async def stop(version: str, data: Path) -> None:
    if await is_running(version, data):
        await run([str(bindir(version) / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w",
                   "-t", "30", "-s"], timeout=40)
