"""redis-server never runs as root: it runs as the redis OS user."""
from __future__ import annotations

from ...engine_user import EngineCommandError, EngineUser  # noqa: F401 - the plugin's names

ENGINE = EngineUser("redis")
as_engine_user, chown_to_engine_user = ENGINE.argv, ENGINE.chown
REDIS_SERVER = "/usr/bin/redis-server"
