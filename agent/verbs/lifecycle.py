"""Verbs about the engine process itself."""
from __future__ import annotations

from . import verb


@verb("restart")
async def restart(manager, arguments: dict, secrets: dict) -> None:
    await manager.restart()
