"""The file a configuration group's values are written to, <instance>/configuration.cnf:
the option file includes it last, so its settings win over the flavor-sized ones.
Stdlib only (bootstrap writes it before the server starts)."""
from __future__ import annotations

import os
from pathlib import Path

NAME = "configuration.cnf"


def path(directory: Path) -> Path:
    return directory / NAME


def _value(value) -> str:
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if isinstance(value, (int, float)):
        return str(value)
    # quoted, so a '#' is not a comment; the option file reads \\ and \" as escapes
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(values: dict) -> str:
    lines = ["# the instance's configuration group, written by the Coffer agent; changes are overwritten",
             "[mariadbd]"]
    lines += [f"{name} = {_value(value)}" for name, value in sorted(values.items())]
    return "\n".join(lines) + "\n"


def write(directory: Path, values: dict) -> None:
    scratch = directory / f".{NAME}.tmp"
    scratch.write_text(render(values))
    scratch.chmod(0o644)  # mysql reads it; the server ignores a world-writable one
    os.replace(scratch, path(directory))
