"""Resize volume, the agent's part: the engine lets go of its volume while the
compute driver grows it, then starts on it again and reports the new size."""
from __future__ import annotations

from dataclasses import replace

from . import verb


@verb("volume_online")
async def volume_online(manager, arguments: dict, secrets: dict) -> dict:
    if not arguments["online"]:
        await manager.stop()  # not the stop action: nothing marks it stopped on purpose
        return {}
    manager.config = replace(manager.config, volume_gb=arguments["volume_gb"])
    await manager.bootstrap()
    return {"volume_gb": manager.config.volume_gb}
