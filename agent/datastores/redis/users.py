"""Users as Redis ACL users, through the agent's admin connection. Passwords go
to Redis as their SHA-256 (ACL SETUSER #<hash>), never in clear."""
from __future__ import annotations

from redis.asyncio import Redis

from ...manager import UserSpec
from .layout import RESERVED_USERS, password_hash

# every key and channel, every command but the server's administration (@admin: ACL
# changes, CONFIG, SHUTDOWN, DEBUG, MODULE, REPLICAOF/SLAVEOF, FAILOVER, MONITOR, SYNC,
# SAVE, CLIENT KILL/LIST/PAUSE, ...) and MIGRATE (the server connecting to any
# address): no tenant account can reach the agent's admin user or the server's
# settings. The same for root (the default user).
TENANT_PERMISSIONS = ("~*", "&*", "+@all", "-@admin", "-migrate")


def check(databases: list[dict], users: list[UserSpec]) -> None:
    """Defence in depth: the API refuses these before they reach the agent."""
    if databases:
        raise ValueError("Redis has no databases")
    for user in users:
        check_name(user.name)
        if user.databases:
            raise ValueError(f"Redis has no databases to grant to user {user.name!r}")
        if user.host not in ("%", ""):
            # Redis ACLs cannot restrict a user by client host: refuse rather than allow everywhere
            raise ValueError(f"Redis cannot restrict user {user.name!r} to host {user.host!r}")
        if not user.password:
            raise ValueError(f"user {user.name!r} needs a password")


def check_name(name: str) -> None:
    """Never one of the reserved users (the agent's own admin user above all)."""
    if name in RESERVED_USERS:
        raise ValueError(f"user name {name!r} is reserved")
    if not name or any(c.isspace() or not c.isprintable() for c in name):
        raise ValueError(f"user name {name!r} is not valid for Redis")


async def create_users(client: Redis, users: list[UserSpec]) -> None:
    """Idempotent: `reset` first, so the user ends exactly as described whether it
    existed or not. Once a user exists the default user, if it was open (no
    password), is disabled, so every client must authenticate; a default user with
    a password (root enabled) stays. ACL SAVE keeps it all across restarts (users.acl)."""
    for user in users:
        await client.execute_command("ACL", "SETUSER", user.name, "reset", "on",
                                     f"#{password_hash(user.password)}", *TENANT_PERMISSIONS)
    if users:
        if "nopass" in (await client.acl_getuser("default"))["flags"]:
            await client.execute_command("ACL", "SETUSER", "default", "off")
        await client.execute_command("ACL", "SAVE")
