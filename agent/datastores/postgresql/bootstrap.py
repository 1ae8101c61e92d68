"""Bring the engine up from nothing or from an existing data directory. Blocking
and stdlib-only, so the agent can start it before it imports anything heavy."""
from __future__ import annotations

from pathlib import Path

from ...configuration import values_at_bring_up
from . import group_file, initdb, run
from .engine_user import chown_to_engine_user


def warm_templates(templates_dir: Path) -> None:
    """Make a template data directory for every installed version (the launcher
    does it once per host, so no create pays for initdb)."""
    for version in sorted(p.parts[-3] for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        initdb.ensure_template(templates_dir, version)


def bootstrap(config) -> None:
    directory, templates_dir, version = config.directory, Path(config.templates_dir), config.version
    address, port, ram_mb = config.address, config.port, config.ram_mb
    socket_dir, data, log = directory / "run", directory / "data", directory / "postgresql.log"
    socket_dir.mkdir(mode=0o700, exist_ok=True)
    chown_to_engine_user(socket_dir)
    initdb.ensure_data_directory(data, templates_dir, version)
    conf = data / "coffer.conf"
    conf.write_text(initdb.settings(address, port, socket_dir, ram_mb))
    chown_to_engine_user(conf)
    initdb.write_replication_conf(data, keep=True)  # a replica's stays
    group_file.write(data, values_at_bring_up(directory, config.initial_configuration))
    log.touch()
    chown_to_engine_user(log)
    run.start(version, data, log)


def engine_running(config) -> bool:
    return run.is_running(config.directory / "data")
