"""Databases, accounts (user@host) and root for MariaDB, over the instance's socket
as the admin account (users.py). Passwords reach the server only as
mysql_native_password hashes. Root is root@'%' with all privileges and the grant
option; the agent's own root@localhost (unix_socket, the socket only) is another
account and is never touched."""
from __future__ import annotations

import asyncio

import pymysql

from ...accounts import Accounts
from ...manager import UserSpec
from ...verbs.replication import ACCOUNT as REPLICATION_ACCOUNT
from . import users

ROOT = ("root", "%")
SYSTEM_DATABASES = ("mysql", "information_schema", "performance_schema", "sys")
NO_SUCH_GRANT = 1141
UNKNOWN_THREAD = 1094


def _delete_database(cur, name: str) -> None:
    # a dropped database keeps its grants in mysql.db: a database made later under the
    # same name would open to them, so they go first
    cur.execute("SELECT User, Host FROM mysql.db WHERE Db = %s", (users.grant_pattern(name),))
    for account in cur.fetchall():
        _revoke(cur, account, name)
    cur.execute(f"DROP DATABASE IF EXISTS {users.identifier(name)}")


def _revoke(cur, account: tuple[str, str], database: str) -> None:
    try:
        cur.execute(f"REVOKE ALL PRIVILEGES ON {users.grant_target(database)}.* FROM %s@%s", account)
    except pymysql.err.OperationalError as exc:
        if exc.args[0] != NO_SUCH_GRANT:  # not granted (any more): nothing to revoke
            raise


def _set_password(cur, spec: UserSpec) -> None:
    cur.execute("ALTER USER %s@%s IDENTIFIED BY PASSWORD %s", (spec.name, spec.host or "%",
                                                                  users.native_hash(spec.password)))


def _rename(cur, old: tuple[str, str], new: tuple[str, str]) -> None:
    cur.execute("SELECT 1 FROM mysql.global_priv WHERE User = %s AND Host = %s", old)
    if cur.fetchone():
        cur.execute("RENAME USER %s@%s TO %s@%s", (*old, *new))


def _end_remote_sessions(cur, user: str) -> None:
    """Close the user's sessions over TCP; the socket's (localhost) belong to the
    agent's own account of that name."""
    cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s AND HOST NOT IN ('localhost', '')",
                (user,))
    for (session,) in cur.fetchall():
        try:
            cur.execute(f"KILL CONNECTION {int(session)}")
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != UNKNOWN_THREAD:  # it ended meanwhile
                raise


def _enable_root(conn, password: str) -> None:
    users.create_users(conn, [UserSpec(ROOT[0], password, ROOT[1])])
    with conn.cursor() as cur:
        cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@%s WITH GRANT OPTION", ROOT)


def _disable_root(cur) -> None:
    cur.execute("DROP USER IF EXISTS %s@%s", ROOT)
    _end_remote_sessions(cur, ROOT[0])


def _unescape(pattern: str) -> str:
    """A database name from mysql.db's grant pattern (grant_pattern's inverse)."""
    return pattern.replace("\\_", "_").replace("\\%", "%").replace("\\\\", "\\")


def _inventory(cur, admin: str) -> dict:
    cur.execute("SHOW DATABASES")
    databases = sorted(name for (name,) in cur.fetchall() if name not in SYSTEM_DATABASES)
    # the tenant's accounts: not the engine's (mariadb.sys, roles), the agent's, root or a replica's
    cur.execute("SELECT User, Host FROM mysql.user WHERE is_role = 'N' "
                "AND User NOT IN ('', 'mariadb.sys', 'root', %s) ORDER BY User, Host", (admin,))
    accounts = [(user, host) for user, host in cur.fetchall() if not REPLICATION_ACCOUNT.fullmatch(user)]
    cur.execute("SELECT User, Host, Db FROM mysql.db")
    grants = {(user, host, _unescape(pattern)) for user, host, pattern in cur.fetchall()}
    cur.execute("SELECT 1 FROM mysql.global_priv WHERE User = %s AND Host = %s", ROOT)
    return {"databases": databases, "root_enabled": bool(cur.fetchone()),
            "users": [{"name": user, "host": host,
                       "databases": sorted(db for db in databases if (user, host, db) in grants)}
                      for user, host in accounts]}


class MariadbAccounts(Accounts):
    def _with_admin(self, work) -> None:
        """Run work(connection) on a new admin connection, in this (worker) thread."""
        conn = users.connect(str(self.paths.socket), self.admin)
        try:
            work(conn)
        finally:
            conn.close()

    async def _run(self, work) -> None:
        await asyncio.to_thread(self._with_admin, work)

    async def _with_cursor(self, statement) -> None:
        """statement(cursor) on an admin connection."""
        def work(conn):
            with conn.cursor() as cur:
                statement(cur)
        await self._run(work)

    async def create_databases(self, databases: list[dict]) -> None:
        await self._run(lambda conn: users.create_databases(conn, databases))

    async def delete_database(self, name: str) -> None:
        await self._with_cursor(lambda cur: _delete_database(cur, name))

    async def create_users(self, specs: list[UserSpec]) -> None:
        await self._run(lambda conn: users.create_users(conn, specs))

    async def delete_user(self, name: str, host: str) -> None:
        await self._with_cursor(lambda cur: cur.execute("DROP USER IF EXISTS %s@%s", (name, host)))

    async def rename_user(self, name: str, host: str, new_name: str, new_host: str) -> None:
        await self._with_cursor(lambda cur: _rename(cur, (name, host), (new_name, new_host)))

    async def set_passwords(self, specs: list[UserSpec]) -> None:
        def statement(cur):
            for spec in specs:
                _set_password(cur, spec)
        await self._with_cursor(statement)

    async def grant(self, name: str, host: str, databases: list[str]) -> None:
        def statement(cur):
            for database in databases:
                users.grant(cur, (name, host), database)
        await self._with_cursor(statement)

    async def revoke(self, name: str, host: str, database: str) -> None:
        await self._with_cursor(lambda cur: _revoke(cur, (name, host), database))

    async def enable_root(self, password: str) -> str:
        await self._run(lambda conn: _enable_root(conn, password))
        return ROOT[0]

    async def disable_root(self) -> None:
        await self._with_cursor(_disable_root)

    async def inventory(self) -> dict:
        found = {}
        await self._with_cursor(lambda cur: found.update(_inventory(cur, self.admin)))
        return found
