"""Configuration groups, the agent's side: the values a tenant's group sets live in
<instance>/configuration.json; each plugin renders them into a file of the engine's
own that its main configuration includes last (so they win over the flavor-sized
settings, which come back when the group no longer sets them), at every bring-up
and change. The values arrive checked against the version's parameter rules.

Stdlib only: the plugins' bootstrap uses it before anything heavy is imported."""
from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path

VALUES_FILE = "configuration.json"


def read_values(directory: Path) -> dict:
    try:
        return json.loads((directory / VALUES_FILE).read_text())
    except FileNotFoundError:
        return {}


def write_values(directory: Path, values: dict) -> None:
    scratch = directory / f".{VALUES_FILE}.tmp"
    scratch.write_text(json.dumps(values, sort_keys=True))
    os.replace(scratch, directory / VALUES_FILE)


def values_at_bring_up(directory: Path, initial: str) -> dict:
    """The values the engine starts with: those of the group attached at create
    (`initial`, JSON) the first time, what the last change left ever after."""
    if not (directory / VALUES_FILE).exists():
        write_values(directory, json.loads(initial or "{}"))
    return read_values(directory)


def changed(values: dict, previous: dict) -> list[str]:
    """Parameters set, changed or no longer set."""
    return sorted(name for name in set(values) | set(previous) if values.get(name) != previous.get(name))


class Configurable(ABC):
    """What a datastore plugin does for configuration groups."""

    @abstractmethod
    async def apply_configuration(self, values: dict, previous: dict) -> bool:
        """Render `values` (the group's, which replace `previous`) into the engine's
        file and apply what the engine can change while it runs; True when some change
        waits for a restart. Raises when the engine refuses a value: the configure verb
        then applies `previous` again."""

    @abstractmethod
    async def running_configuration(self, names: list[str]) -> dict[str, str]:
        """The running engine's value of each named parameter it knows, as text."""
