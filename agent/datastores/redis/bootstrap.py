"""Bring Redis up from nothing or from an existing data directory, or adopt the
server a previous agent started. Blocking and stdlib-only, so the agent can start
it before it imports anything heavy. Redis needs no template: it starts in ~20 ms."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from ...configuration import values_at_bring_up
from ...engine_user import run as run_as_agent
from . import defaults, group_file, run
from .engine_user import REDIS_SERVER, chown_to_engine_user
from .layout import Layout, admin_password, settings, write_aclfile


def warm_templates(templates_dir: Path) -> None:
    """Redis needs no template data directory; its compiled-in defaults are noted
    once per host (the launcher does it, so no configuration change waits for it)."""
    out = run_as_agent([REDIS_SERVER, "--version"], timeout=30)
    number = next(part[2:] for part in out.split() if part.startswith("v="))
    defaults.compiled_defaults(templates_dir, ".".join(number.split(".")[:2]))


def _owned_dir(path) -> None:
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    chown_to_engine_user(path)


def bootstrap(config) -> None:
    layout = Layout(config.directory)
    password = admin_password(layout)
    _owned_dir(layout.run_dir)
    _owned_dir(layout.data)
    # root-owned and read-only to redis: CONFIG REWRITE cannot change what the agent set
    scratch = layout.conf.with_name(f".redis.conf.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(settings(layout, config.address, config.port, config.ram_mb))
    scratch.rename(layout.conf)
    group_file.write(layout, values_at_bring_up(config.directory, config.initial_configuration))
    if not layout.logging_file.exists():  # redis.conf includes it; no guest log switched yet
        layout.logging_file.write_text("")
    layout.log.touch(mode=0o640)
    chown_to_engine_user(layout.log)
    if run.server_pid(layout) is None:
        write_aclfile(layout, password)  # only while no server runs: it would overwrite it on ACL SAVE
    run.ensure_running(layout, config.address, config.port, password)


def engine_running(config) -> bool:
    return run.server_pid(Layout(config.directory)) is not None
