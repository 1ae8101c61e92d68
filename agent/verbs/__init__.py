"""The verbs an agent command may name (coffer.agent.command.v1). Each verb is a
coroutine (manager, arguments, secrets) -> output dict, registered by the module of
its capability: lifecycle (restart, ...), accounts (databases, users, root),
configuration (configure, show_configuration), resize, logs (guest_log), and more as capabilities arrive."""
from __future__ import annotations

from typing import Awaitable, Callable

from ..manager import DatastoreManager

Verb = Callable[[DatastoreManager, dict, dict], Awaitable[dict | None]]
VERBS: dict[str, Verb] = {}


def verb(name: str):
    def register(fn: Verb) -> Verb:
        VERBS[name] = fn
        return fn
    return register


async def run(name: str, manager: DatastoreManager, arguments: dict, secrets: dict) -> dict:
    handler = VERBS.get(name)
    if handler is None:
        raise ValueError(f"this agent has no verb {name!r}")
    return await handler(manager, arguments, secrets) or {}


# importing them registers their verbs
from . import accounts, backup, configuration, lifecycle, logs, power, replication, resize, volume  # noqa: E402,F401
