"""The file a configuration group's values are written to, data/configuration.conf:
coffer.conf includes it last, so its settings win over the flavor-sized ones.
Stdlib only (bootstrap writes it before the engine starts)."""
from __future__ import annotations

import os
from pathlib import Path

from .engine_user import chown_to_engine_user

NAME = "configuration.conf"


def _value(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    # a quoted string: PostgreSQL reads '' as a quote and a backslash as an escape
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def render(values: dict) -> str:
    lines = ["# the instance's configuration group, written by the Coffer agent; changes are overwritten"]
    lines += [f"{name} = {_value(value)}" for name, value in sorted(values.items())]
    return "\n".join(lines) + "\n"


def write(data: Path, values: dict) -> None:
    scratch = data / f".{NAME}.tmp"
    scratch.write_text(render(values))
    chown_to_engine_user(scratch)
    os.replace(scratch, data / NAME)
