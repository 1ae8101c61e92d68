"""Configuration groups on MariaDB: the group's option file is rewritten, and each
changed variable the server can change while it runs is set with SET GLOBAL (a
variable no longer set goes back to the agent's own option, else to the server's
default); a read-only one, or one the server's start options fix (e.g.
max_user_connections while it started at 0), waits for a restart."""
from __future__ import annotations

import asyncio
import re

import pymysql

from ...configuration import Configurable, changed
from ...engine_user import EngineCommandError
from . import conf, group_file, users

NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
OPTION_PREVENTS_STATEMENT = 1290
SIZE_RE = re.compile(r"^(\d+)([KMG])$")


def _sql_value(value):
    """A value for SET GLOBAL, which takes no quoted numbers and no size suffixes."""
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if not isinstance(value, str):
        return value
    if value.isdigit():  # an option of the agent's own file
        return int(value)
    size = SIZE_RE.match(value)
    if size:  # the option file's 128M
        return int(size.group(1)) * 1024 ** ("KMG".index(size.group(2)) + 1)
    return value


class ConfigurationMixin(Configurable):
    async def apply_configuration(self, values: dict, previous: dict) -> bool:
        await asyncio.to_thread(group_file.write, self.config.directory, values)
        return await asyncio.to_thread(self._apply_live, values, previous)

    def _own_options(self) -> dict:
        c = self.config
        options = conf.server_options(self.paths, c.address, c.port, c.ram_mb, c.instance_id)
        return {name.replace("-", "_"): value for name, value in options.items()}

    def _apply_live(self, values: dict, previous: dict) -> bool:
        names = changed(values, previous)
        if not names:
            return False
        bad = [n for n in names if not NAME_RE.match(n)]
        if bad:
            raise ValueError(f"not MariaDB variable names: {bad}")
        own, pending = self._own_options(), False
        conn = users.connect(str(self.paths.socket), self.admin)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT LOWER(VARIABLE_NAME), READ_ONLY = 'YES' FROM information_schema.SYSTEM_VARIABLES "
                            f"WHERE VARIABLE_NAME IN ({', '.join(['%s'] * len(names))})", [n.upper() for n in names])
                read_only = dict(cur.fetchall())
                for name in names:
                    if name not in read_only:
                        raise EngineCommandError(f"MariaDB has no variable {name}")
                    if read_only[name]:
                        pending = True
                        continue
                    value = values.get(name, own.get(name))
                    try:
                        if value is None:
                            cur.execute(f"SET GLOBAL {name} = DEFAULT")
                        else:
                            cur.execute(f"SET GLOBAL {name} = %s", (_sql_value(value),))
                    except pymysql.err.OperationalError as exc:
                        if exc.args[0] != OPTION_PREVENTS_STATEMENT:
                            raise
                        pending = True
        finally:
            conn.close()
        return pending

    async def running_configuration(self, names: list[str]) -> dict[str, str]:
        return await asyncio.to_thread(self._running, [n.upper() for n in names])

    def _running(self, names: list[str]) -> dict[str, str]:
        if not names:
            return {}
        conn = users.connect(str(self.paths.socket), self.admin)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT LOWER(VARIABLE_NAME), GLOBAL_VALUE FROM information_schema.SYSTEM_VARIABLES "
                            f"WHERE VARIABLE_NAME IN ({', '.join(['%s'] * len(names))})", names)
                return {name: value for name, value in cur.fetchall()}
        finally:
            conn.close()
