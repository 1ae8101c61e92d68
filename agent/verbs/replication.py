"""Replication verbs: serve a replica (its account on this source), follow a source
(a fresh copy, or re-pointing), promote, and report the replication state."""
from __future__ import annotations

import asyncio
import re
import time

from ..manager import SourceLink
from . import verb

CATCH_UP_SECONDS = 30
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


@verb("set_synchronous")
async def set_synchronous(manager, arguments: dict, secrets: dict) -> None:
    await manager.set_synchronous(bool(arguments["enabled"]))


async def _inventory(manager, arguments: dict) -> dict:
    """The accounts a copy of another instance's data brought, when asked (the API's
    view of this instance then starts from them)."""
    return {"accounts": await manager.inventory()} if arguments.get("inventory") else {}


@verb("follow")
async def follow(manager, arguments: dict, secrets: dict) -> dict:
    await manager.follow(SourceLink(arguments["address"], int(arguments["port"]), _account(arguments),
                                    secrets["password"], _account(arguments)), bool(arguments.get("copy_data")))
    return await _inventory(manager, arguments)


@verb("promote")
async def promote(manager, arguments: dict, secrets: dict) -> dict:
    """After a planned stop of the old primary, first catch up to its last position."""
    target = int(arguments.get("catch_up_to") or 0)
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while target and (await manager.replication_state()).position < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the replica did not reach position {target} within {CATCH_UP_SECONDS:.0f} s")
        await asyncio.sleep(0.01)
    await manager.promote()
    return {**_state(await manager.replication_state()), **await _inventory(manager, arguments)}


@verb("replication_state")
async def replication_state(manager, arguments: dict, secrets: dict) -> dict:
    return _state(await manager.replication_state())


@verb("stop_engine")
async def stop_engine(manager, arguments: dict, secrets: dict) -> dict:
    """A planned switchover's first step: the old primary stops taking writes; its
    last position is what the new primary must reach before it is promoted."""
    await manager.refuse_writes()
    state = await manager.replication_state()
    await manager.stop()
    return _state(state)


def _state(state) -> dict:
    return {"role": state.role, "position": state.position, "lag_seconds": state.lag_seconds}
