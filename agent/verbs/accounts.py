"""Verbs about databases, users and root (agent/accounts.py). Passwords arrive
sealed: in `secrets`, never in `arguments`; results carry no secret."""
from __future__ import annotations

from ..accounts import Accounts
from ..manager import UserSpec
from . import verb


def accounts(manager) -> Accounts:
    if not isinstance(manager, Accounts):
        raise ValueError("this datastore has no databases, users or root")
    return manager


def with_passwords(users: list[dict], secrets: dict) -> list[UserSpec]:
    """The users of the arguments, each with its password from the sealed list (same order)."""
    passwords = secrets.get("passwords") or []
    if len(passwords) != len(users):
        raise ValueError(f"{len(users)} users but {len(passwords)} sealed passwords")
    return [UserSpec(u["name"], password, u.get("host") or "%", tuple(u.get("databases") or ()))
            for u, password in zip(users, passwords)]


@verb("create_databases")
async def create_databases(manager, arguments: dict, secrets: dict) -> None:
    await accounts(manager).create_databases(arguments["databases"])


@verb("delete_database")
async def delete_database(manager, arguments: dict, secrets: dict) -> None:
    await accounts(manager).delete_database(arguments["name"])


@verb("create_users")
async def create_users(manager, arguments: dict, secrets: dict) -> None:
    await accounts(manager).create_users(with_passwords(arguments["users"], secrets))


@verb("delete_user")
async def delete_user(manager, arguments: dict, secrets: dict) -> None:
    await accounts(manager).delete_user(arguments["name"], arguments["host"])


@verb("update_user")
async def update_user(manager, arguments: dict, secrets: dict) -> None:
    """Rename (or move to another host), then the new password if one was given."""
    name, host = arguments["name"], arguments["host"]
    target = accounts(manager)
    if arguments.get("new_name"):
        await target.rename_user(name, host, arguments["new_name"], arguments["new_host"])
        name, host = arguments["new_name"], arguments["new_host"]
    if secrets.get("password"):
        await target.set_passwords([UserSpec(name, secrets["password"], host)])


@verb("change_passwords")
async def change_passwords(manager, arguments: dict, secrets: dict) -> None:
    await accounts(manager).set_passwords(with_passwords(arguments["users"], secrets))


@verb("grant_access")
async def grant_access(manager, arguments: dict, secrets: dict) -> None:
    await accounts(manager).grant(arguments["name"], arguments["host"], arguments["databases"])


@verb("revoke_access")
async def revoke_access(manager, arguments: dict, secrets: dict) -> None:
    await accounts(manager).revoke(arguments["name"], arguments["host"], arguments["database"])


@verb("enable_root")
async def enable_root(manager, arguments: dict, secrets: dict) -> dict:
    if not secrets.get("password"):
        raise ValueError("no sealed root password")
    return {"user": await accounts(manager).enable_root(secrets["password"])}


@verb("disable_root")
async def disable_root(manager, arguments: dict, secrets: dict) -> None:
    await accounts(manager).disable_root()
