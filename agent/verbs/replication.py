"""Replication verbs: serve a replica (its account on this source), follow a source
(a fresh copy, or re-pointing), promote, and report the replication state."""
from __future__ import annotations

import re

from ..manager import SourceLink
from . import verb

ACCOUNT = re.compile(r"coffer_repl_[0-9a-f]{1,32}")  # the provisioner's names: nothing to quote


def _account(arguments: dict) -> str:
    if not ACCOUNT.fullmatch(arguments["account"]):
        raise ValueError("not a replication account name")
    return arguments["account"]


@verb("serve_replica")
async def serve_replica(manager, arguments: dict, secrets: dict) -> None:
    await manager.serve_replica(_account(arguments), secrets["password"])


@verb("forget_replica")
async def forget_replica(manager, arguments: dict, secrets: dict) -> None:
    await manager.forget_replica(_account(arguments))


@verb("follow")
async def follow(manager, arguments: dict, secrets: dict) -> None:
    await manager.follow(SourceLink(arguments["address"], int(arguments["port"]), _account(arguments),
                                    secrets["password"], _account(arguments)), bool(arguments.get("copy_data")))


@verb("promote")
async def promote(manager, arguments: dict, secrets: dict) -> dict:
    await manager.promote()
    return _state(await manager.replication_state())


@verb("replication_state")
async def replication_state(manager, arguments: dict, secrets: dict) -> dict:
    return _state(await manager.replication_state())


@verb("stop_engine")
async def stop_engine(manager, arguments: dict, secrets: dict) -> dict:
    """A planned switchover's first step: the old primary stops taking writes; its
    last position is what the new primary must reach before it is promoted."""
    state = await manager.replication_state()
    await manager.stop()
    return _state(state)


def _state(state) -> dict:
    return {"role": state.role, "position": state.position, "lag_seconds": state.lag_seconds}
