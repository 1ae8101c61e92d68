"""PostgreSQL refuses to run as root: its binaries run as the postgres OS user."""
from __future__ import annotations

from pathlib import Path

from ...engine_user import EngineCommandError, EngineUser  # noqa: F401 - the plugin's names

ENGINE = EngineUser("postgres")
run, chown_to_engine_user = ENGINE.run, ENGINE.chown


def bindir(version: str) -> Path:
    return Path(f"/usr/lib/postgresql/{version}/bin")
