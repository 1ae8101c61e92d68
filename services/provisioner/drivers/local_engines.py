"""Which engines the local driver can run: the ones installed on this machine.
One discovery function per datastore; each offer names the agent plugin that
runs it and the engine's default port."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .base import DatastoreOffer


def _version_of(argv: list[str], pattern: str) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(pattern, out)
    return m.group(1) if m else None


def postgresql(root: Path = Path("/usr/lib/postgresql")) -> list[DatastoreOffer]:
    offers = []
    for binary in sorted(root.glob("*/bin/postgres")):
        number = _version_of([str(binary), "--version"], r"\(PostgreSQL\) (\d+(?:\.\d+)?)")
        if number:
            offers.append(DatastoreOffer("postgresql", binary.parts[-3], number, "postgresql", 5432))
    return offers


def redis(binary: Path = Path("/usr/bin/redis-server")) -> list[DatastoreOffer]:
    number = _version_of([str(binary), "--version"], r"\bv=(\d+\.\d+(?:\.\d+)?)")
    if not number:
        return []
    return [DatastoreOffer("redis", ".".join(number.split(".")[:2]), number, "redis", 6379)]


def mariadb(binary: Path = Path("/usr/sbin/mariadbd")) -> list[DatastoreOffer]:
    """The installed MariaDB server runs both datastores, mariadb and mysql."""
    number = _version_of([str(binary), "--version"], r"Ver (\d+\.\d+\.\d+)-MariaDB")
    if not number:
        return []
    name = ".".join(number.split(".")[:2])
    return [DatastoreOffer(datastore, name, number, "mariadb", 3306) for datastore in ("mariadb", "mysql")]


DISCOVERIES = [postgresql, mariadb, redis]


def installed_engines() -> list[DatastoreOffer]:
    return [offer for discover in DISCOVERIES for offer in discover()]
