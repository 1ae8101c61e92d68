"""The API's own view of each instance's databases, users, grants and root: its
tables, changed when an account action completes and, for what a create request
asked for, once the instance is ACTIVE. Never a password."""
from __future__ import annotations

import json

from sqlalchemy import delete, select

from . import naming, operations
from .account_state import ACTIONS, AccountState, found
from .rest import now
from .tables import (instance_databases, instance_root, instance_users, instances, operations as operations_table,
                     requested_accounts, root_history, user_grants)


async def load(conn, instance_id: str) -> AccountState:
    """What the instance has: the actions that completed."""
    state = AccountState()
    state.databases = set((await conn.execute(select(instance_databases.c.name).where(
        instance_databases.c.instance_id == instance_id))).scalars())
    for user in await conn.execute(select(instance_users).where(instance_users.c.instance_id == instance_id)):
        state.users[(user.name, user.host)] = set()
    for grant in await conn.execute(select(user_grants).where(user_grants.c.instance_id == instance_id)):
        state.users.setdefault((grant.user_name, grant.user_host), set()).add(grant.database)
    root = (await conn.execute(select(instance_root.c.enabled).where(
        instance_root.c.instance_id == instance_id))).first()
    state.root_enabled = bool(root and root.enabled)
    return state


async def projected(conn, instance_id: str) -> AccountState:
    """What the instance will have once the account actions still running have
    completed, in the order they were requested (the order the agent runs them)."""
    state = await load(conn, instance_id)
    running = await conn.execute(select(operations_table.c.action, operations_table.c.arguments).where(
        operations_table.c.instance_id == instance_id, operations_table.c.state == "running",
        operations_table.c.action.in_(ACTIONS)).order_by(operations_table.c.created_at))
    for op in running:
        state.apply(op.action, json.loads(op.arguments))
    return state


async def save(conn, instance_id: str, before: AccountState, after: AccountState) -> None:
    """Write the difference between two states of the instance."""
    for name in before.databases - after.databases:
        await conn.execute(delete(instance_databases).where(
            instance_databases.c.instance_id == instance_id, instance_databases.c.name == name))
    for name in after.databases - before.databases:
        await conn.execute(instance_databases.insert().values(instance_id=instance_id, name=name))
    for (name, host), granted in before.users.items():
        kept = after.users.get((name, host))
        gone = granted if kept is None else granted - kept
        for database in gone:
            await conn.execute(delete(user_grants).where(
                user_grants.c.instance_id == instance_id, user_grants.c.user_name == name,
                user_grants.c.user_host == host, user_grants.c.database == database))
        if kept is None:
            await conn.execute(delete(instance_users).where(
                instance_users.c.instance_id == instance_id, instance_users.c.name == name,
                instance_users.c.host == host))
    for (name, host), granted in after.users.items():
        had = before.users.get((name, host))
        if had is None:
            await conn.execute(instance_users.insert().values(instance_id=instance_id, name=name, host=host))
        for database in granted - (had or set()):
            await conn.execute(user_grants.insert().values(instance_id=instance_id, user_name=name,
                                                           user_host=host, database=database))
    if after.root_enabled != before.root_enabled:
        await conn.execute(delete(instance_root).where(instance_root.c.instance_id == instance_id))
        await conn.execute(instance_root.insert().values(instance_id=instance_id, enabled=after.root_enabled,
                                                         changed_at=now()))


async def apply(conn, instance_id: str, action: str, arguments: dict) -> None:
    before = await load(conn, instance_id)
    after = before.copy()
    after.apply(action, arguments)
    await save(conn, instance_id, before, after)


def _register(action: str) -> None:
    @operations.on_completed(action)
    async def completed(uow, op, _output: dict) -> None:
        await apply(uow.conn, op.instance_id, op.action, json.loads(op.arguments))


for _action in ACTIONS:
    _register(_action)


async def replace(conn, instance_id: str, datastore: str, inventory: dict) -> None:
    """The view becomes what the engine reported holding (its data came from a copy)."""
    rules = naming.rules_for(datastore)
    await save(conn, instance_id, await load(conn, instance_id),
               found(inventory, rules.reserved_databases, rules.reserved_users))


@operations.on_completed("detach_replica")
async def detached(uow, op, output: dict) -> None:
    """A replica held its primary's accounts, changed since it was made: the agent
    named them as the replica became a primary of its own."""
    if output.get("accounts") is not None:
        datastore = (await uow.conn.execute(select(instances.c.datastore).where(
            instances.c.id == op.instance_id))).scalar_one()
        await replace(uow.conn, op.instance_id, datastore, output["accounts"])


# -- a create request's databases and users ------------------------------------
async def remember_requested(conn, instance_id: str, databases: list[dict], users: list[dict]) -> None:
    """Called with the create request; `users` without their passwords."""
    if databases or users:
        await conn.execute(requested_accounts.insert().values(
            instance_id=instance_id, databases=json.dumps(databases), users=json.dumps(users)))


async def instance_active(conn, instance_id: str, datastore: str, inventory: dict | None) -> None:
    """The create's prepare succeeded: its databases and users exist now. Data that
    came from a copy (a restored backup, a replica's primary) holds more: the
    engine's inventory of it replaces the view (it includes what the request named)."""
    if inventory is not None:
        await replace(conn, instance_id, datastore, inventory)
        await drop_requested(conn, instance_id)
        return
    row = (await conn.execute(select(requested_accounts).where(
        requested_accounts.c.instance_id == instance_id))).first()
    if row is None:
        return
    await apply(conn, instance_id, "create_databases", {"databases": json.loads(row.databases)})
    await apply(conn, instance_id, "create_users", {"users": json.loads(row.users)})
    await drop_requested(conn, instance_id)


async def drop_requested(conn, instance_id: str) -> None:
    await conn.execute(delete(requested_accounts).where(requested_accounts.c.instance_id == instance_id))


async def root_enabled_by(conn, instance_id: str, user_id: str) -> None:
    """Root history: the first enabling is kept (as Trove keeps it)."""
    if not (await conn.execute(select(root_history.c.instance_id).where(
            root_history.c.instance_id == instance_id))).first():
        await conn.execute(root_history.insert().values(instance_id=instance_id, user_id=user_id,
                                                        enabled_at=now()))


async def forget(conn, instance_id: str) -> None:
    """The instance is deleted."""
    for table in (instance_databases, instance_users, user_grants, instance_root, root_history,
                  requested_accounts):
        await conn.execute(delete(table).where(table.c.instance_id == instance_id))
