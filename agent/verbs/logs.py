"""Guest logs (agent/guest_logs.py): list, show, enable, disable, publish, discard."""
from __future__ import annotations

from plumbing import objectstore

from ..guest_logs import GuestLogs, GuestLogSource
from . import verb

STATE_FILE = "guest_logs.json"


def guest_logs(manager) -> GuestLogs:
    if not isinstance(manager, GuestLogSource):
        raise ValueError("this datastore has no guest logs")
    c = manager.config
    return GuestLogs(manager, objectstore.from_environment(), c.instance_id, c.datastore, c.directory / STATE_FILE)


@verb("guest_log")
async def guest_log(manager, arguments: dict, secrets: dict) -> dict:
    """`actions` ["list"], or any of enable/disable/publish/discard done in that
    order on the log `name` (none: show it); the log as it then stands."""
    logs, name, actions = guest_logs(manager), arguments.get("name"), arguments.get("actions") or []
    if actions == ["list"]:
        return {"logs": await logs.list()}
    for action in actions:
        if action in ("enable", "disable"):
            if (await logs.enable(name, action == "enable"))["status"] == "Restart Required":
                manager.mark_restart_pending()  # the instance shows RESTART_REQUIRED until restarted
        elif action == "publish":
            await logs.publish(name)
        elif action == "discard":
            await logs.discard(name)
        else:
            raise ValueError(f"unknown guest log action {action!r}")
    return {"log": await logs.show(name)}
