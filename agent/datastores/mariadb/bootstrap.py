"""Bring the engine up from nothing or from an existing data directory. Blocking
and stdlib-only, so the agent can start it before it imports anything heavy."""
from __future__ import annotations

from pathlib import Path

from ...configuration import values_at_bring_up
from . import conf, group_file, installdb, run
from .engine_user import chown_to_engine_user, server_version


def warm_templates(templates_dir: Path) -> None:
    """Make the template data directory of the installed server (the launcher does
    it once per host, so no create pays for mariadb-install-db)."""
    number = server_version()
    if number:
        installdb.ensure_template(templates_dir, ".".join(number.split(".")[:2]))


def bootstrap(config) -> None:
    paths = conf.Paths(config.directory)
    paths.run_dir.mkdir(mode=0o700, exist_ok=True)
    chown_to_engine_user(paths.run_dir)
    installdb.ensure_data_directory(paths.data, Path(config.templates_dir), config.version)
    paths.options.write_text(conf.options(paths, config.address, config.port, config.ram_mb,
                                          config.instance_id))
    paths.options.chmod(0o644)  # mysql reads it; the server ignores a world-writable one
    group_file.write(config.directory, values_at_bring_up(config.directory, config.initial_configuration))
    paths.log.touch()
    run.start(paths)


def engine_running(config) -> bool:
    return run.server_pid(conf.Paths(config.directory)) is not None
