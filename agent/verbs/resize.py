"""Resize: the engine restarted with memory settings for a new flavor."""
from __future__ import annotations

from . import verb


@verb("resize")
async def resize(manager, arguments: dict, secrets: dict) -> dict:
    flavor = arguments["flavor"]
    await manager.resize(flavor["ram_mb"], flavor["vcpus"])
    return {"ram_mb": flavor["ram_mb"], "vcpus": flavor["vcpus"]}
