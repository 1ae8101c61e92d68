"""Verbs of configuration groups: apply a group's values, report the running ones."""
from __future__ import annotations

from .. import configuration
from . import verb


@verb("configure")
async def configure(manager, arguments: dict, secrets: dict) -> dict:
    directory = manager.config.directory
    values, previous = arguments["values"], configuration.read_values(directory)
    configuration.write_values(directory, values)
    try:
        pending = await manager.apply_configuration(values, previous)
    except Exception:
        # the engine refused a value: its files and live settings go back to what they were
        configuration.write_values(directory, previous)
        await manager.apply_configuration(previous, values)
        raise
    if pending:
        manager.mark_restart_pending()
    return {"restart_required": pending}


@verb("show_configuration")
async def show_configuration(manager, arguments: dict, secrets: dict) -> dict:
    return {"values": await manager.running_configuration(arguments["names"])}
