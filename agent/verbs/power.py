"""Stop and start (beyond Trove): the engine stopped on purpose and kept so, the
agent still running and heartbeating, then started again on the same data."""
from __future__ import annotations

from . import verb


@verb("stop")
async def stop(manager, arguments: dict, secrets: dict) -> None:
    await manager.stop_engine()


@verb("start")
async def start(manager, arguments: dict, secrets: dict) -> None:
    await manager.start_engine()
