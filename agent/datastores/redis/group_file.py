"""The file a configuration group's values are written to (Layout.group_file):
redis.conf includes it last, so its settings win over the flavor-sized ones.
Stdlib only (bootstrap writes it before the server starts)."""
from __future__ import annotations

import os
import secrets

from .layout import Layout, quoted


def text(value) -> str:
    """A value as Redis reads it, in its file and in CONFIG SET."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render(values: dict) -> str:
    lines = ["# the instance's configuration group, written by the Coffer agent; changes are overwritten"]
    # numbers bare; strings quoted (save "900 1 300 10" is split into its parts by Redis)
    lines += [f"{name} {quoted(value) if isinstance(value, str) else text(value)}"
              for name, value in sorted(values.items())]
    return "\n".join(lines) + "\n"


def write(layout: Layout, values: dict) -> None:
    """Root-owned and read-only to redis, like redis.conf."""
    scratch = layout.group_file.with_name(f".{layout.group_file.name}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(render(values))
    os.replace(scratch, layout.group_file)
