"""Users and root for Redis, as ACL users through the agent's admin connection.
Redis has no databases to create, drop or grant (the API answers 422 before a
command is sent) and no per-host users.

Root is Redis's `default` user, the one `requirepass` sets and `AUTH <password>`
logs in as: enabling root gives it a password (and the tenant's permissions: no
server administration), disabling root switches it off and closes its
connections. Unlike Trove, which reopens Redis to everyone on disable, a disabled
root never leaves the instance open: clients then log in as an ACL user."""
from __future__ import annotations

from ...accounts import Accounts
from ...manager import UserSpec
from . import users
from .layout import password_hash

ROOT = "default"


def _no_databases() -> None:
    raise ValueError("Redis has no databases")


def _only_any_host(*hosts: str) -> None:
    for host in hosts:
        if host not in ("%", ""):
            raise ValueError(f"Redis users have no host; {host!r} cannot be used")


class RedisAccounts(Accounts):
    async def _acl(self, *args) -> None:
        await self._admin().execute_command("ACL", *args)

    async def create_databases(self, databases: list[dict]) -> None:
        _no_databases()

    async def delete_database(self, name: str) -> None:
        _no_databases()

    async def grant(self, name: str, host: str, databases: list[str]) -> None:
        _no_databases()

    async def revoke(self, name: str, host: str, database: str) -> None:
        _no_databases()

    async def create_users(self, specs: list[UserSpec]) -> None:
        users.check([], specs)
        await users.create_users(self._admin(), specs)

    async def delete_user(self, name: str, host: str) -> None:
        users.check_name(name)
        await self._acl("DELUSER", name)  # also closes the connections logged in as it
        await self._acl("SAVE")

    async def rename_user(self, name: str, host: str, new_name: str, new_host: str) -> None:
        """Redis cannot rename: the new user gets the old one's password hashes, then
        the old one goes (with its connections)."""
        _only_any_host(host, new_host)
        users.check_name(name)
        users.check_name(new_name)
        old = await self._admin().acl_getuser(name)
        if old is not None:
            hashes = [f"#{h}" for h in old["passwords"]]
            await self._acl("SETUSER", new_name, "reset", "on", *hashes, *users.TENANT_PERMISSIONS)
            await self._acl("DELUSER", name)
            await self._acl("SAVE")

    async def set_passwords(self, specs: list[UserSpec]) -> None:
        users.check([], specs)
        for spec in specs:
            await self._acl("SETUSER", spec.name, "resetpass", f"#{password_hash(spec.password)}")
        await self._acl("SAVE")

    async def enable_root(self, password: str) -> str:
        await self._acl("SETUSER", ROOT, "reset", "on", f"#{password_hash(password)}", *users.TENANT_PERMISSIONS)
        await self._acl("SAVE")
        return ROOT

    async def disable_root(self) -> None:
        await self._acl("SETUSER", ROOT, "reset")  # off, no password, no command
        await self._admin().execute_command("CLIENT", "KILL", "USER", ROOT)
        await self._acl("SAVE")

    async def inventory(self) -> dict:
        names = await self._admin().acl_users()
        root = (await self._admin().acl_getuser(ROOT))["flags"]  # enabled: on, with a password
        return {"databases": [], "root_enabled": "on" in root and "nopass" not in root,
                "users": [{"name": name, "host": "%", "databases": []}
                          for name in sorted(names) if name not in users.RESERVED_USERS]}
