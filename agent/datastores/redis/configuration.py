"""Configuration groups on Redis: the group's file is rewritten and each changed
parameter set with CONFIG SET (one no longer set goes back to the agent's own
setting, else to Redis's compiled-in default); an immutable one waits for a restart."""
from __future__ import annotations

import asyncio
from pathlib import Path

from redis.exceptions import ResponseError

from ...configuration import Configurable, changed
from ...engine_user import EngineCommandError
from . import defaults, group_file
from .layout import directives


class ConfigurationMixin(Configurable):
    async def apply_configuration(self, values: dict, previous: dict) -> bool:
        await asyncio.to_thread(group_file.write, self.layout, values)
        c, pending = self.config, False
        own = directives(self.layout, c.address, c.port, c.ram_mb)
        for name in changed(values, previous):
            if name in values:
                value = group_file.text(values[name])
            elif name in own:
                value = own[name]
            else:
                value = (await asyncio.to_thread(defaults.compiled_defaults, Path(c.templates_dir), c.version))[name]
            try:
                await self._admin().execute_command("CONFIG", "SET", name, value)
            except ResponseError as exc:
                if "immutable" not in str(exc):
                    raise EngineCommandError(f"Redis refused {name} {value!r}: {exc}") from None
                pending = True
        return pending

    async def running_configuration(self, names: list[str]) -> dict[str, str]:
        if not names:
            return {}
        reply = await self._admin().execute_command("CONFIG", "GET", *names)
        return {name.decode(): value.decode() for name, value in reply.items()}
