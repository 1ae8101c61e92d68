"""Databases, roles and root for PostgreSQL, as the postgres superuser over the
instance's socket. Passwords reach the server only as SCRAM verifiers; a SCRAM
verifier is not salted with the role's name, so a renamed role keeps its password
(an MD5 one would be cleared by the rename). PostgreSQL has no per-host users:
the host is always "%"."""
from __future__ import annotations

import psycopg
from psycopg import sql

from ...accounts import Accounts
from ...manager import UserSpec
from . import users
from .scram import verifier

ROOT = "root"  # a superuser login role of the tenant's; the agent itself is postgres over the socket
ADMIN = "postgres"

# the tenant's login roles: not the engine's (pg_*), the agent's, root or a replica's (REPLICATION)
TENANT_ROLES = """SELECT rolname FROM pg_roles WHERE rolcanlogin AND NOT rolsuper AND NOT rolreplication
  AND rolname NOT IN (%s, %s) AND rolname NOT LIKE 'pg\\_%%' ORDER BY rolname"""
# a database is granted to a user when the user may connect to it (grant_database gives CONNECT with ALL)
CONNECT_GRANTS = """SELECT r.rolname, d.datname FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) a
  JOIN pg_roles r ON r.oid = a.grantee WHERE a.privilege_type = 'CONNECT'"""


def _only_any_host(*hosts: str) -> None:
    for host in hosts:
        if host not in ("%", ""):
            raise ValueError(f"PostgreSQL roles have no host; {host!r} cannot be used")


class PostgresAccounts(Accounts):
    async def _connect(self, dbname: str = "postgres") -> psycopg.AsyncConnection:
        return await users.connect(str(self.socket_dir), self.config.port, dbname)

    async def _role_exists(self, conn, name: str) -> bool:
        return bool(await (await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))).fetchone())

    @staticmethod
    async def _end_sessions(conn, role: str, dbname: str | None = None) -> None:
        """Close the role's open sessions (on one database): what it lost applies at once."""
        query = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s"
        args: tuple = (role,)
        if dbname is not None:
            query += " AND datname = %s"
            args += (dbname,)
        await conn.execute(query, args)

    async def create_databases(self, databases: list[dict]) -> None:
        async with await self._connect() as conn:
            await users.create_databases(conn, databases)

    async def delete_database(self, name: str) -> None:
        async with await self._connect() as conn:
            # FORCE ends the sessions on it; its privileges go with it
            await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    async def create_users(self, specs: list[UserSpec]) -> None:
        _only_any_host(*(spec.host for spec in specs))
        async with await self._connect() as conn:
            await users.create_users(conn, str(self.socket_dir), self.config.port, specs)

    async def delete_user(self, name: str, host: str) -> None:
        """What the role owns is handed to postgres (the data stays), its privileges
        are dropped in every database, its sessions end, then the role goes."""
        async with await self._connect() as conn:
            if not await self._role_exists(conn, name):
                return
            role = sql.Identifier(name)
            databases = await (await conn.execute(
                "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate")).fetchall()
            for (dbname,) in databases:
                async with await self._connect(dbname) as dbconn:
                    await dbconn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(role, sql.Identifier(ADMIN)))
                    await dbconn.execute(sql.SQL("DROP OWNED BY {}").format(role))
            await self._end_sessions(conn, name)
            await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))

    async def rename_user(self, name: str, host: str, new_name: str, new_host: str) -> None:
        _only_any_host(host, new_host)
        async with await self._connect() as conn:
            if await self._role_exists(conn, name):
                await conn.execute(sql.SQL("ALTER ROLE {} RENAME TO {}").format(
                    sql.Identifier(name), sql.Identifier(new_name)))

    async def set_passwords(self, specs: list[UserSpec]) -> None:
        async with await self._connect() as conn:
            for spec in specs:
                await conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(spec.name), sql.Literal(verifier(spec.password))))

    async def grant(self, name: str, host: str, databases: list[str]) -> None:
        async with await self._connect() as conn:
            for dbname in databases:
                await users.grant_database(conn, str(self.socket_dir), self.config.port, name, dbname)

    async def revoke(self, name: str, host: str, database: str) -> None:
        role = sql.Identifier(name)
        async with await self._connect() as conn:
            await conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(database), role))
            async with await self._connect(database) as dbconn:
                await dbconn.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(role))
            await self._end_sessions(conn, name, database)

    async def enable_root(self, password: str) -> str:
        async with await self._connect() as conn:
            verb = "ALTER" if await self._role_exists(conn, ROOT) else "CREATE"
            await conn.execute(sql.SQL(verb + " ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(ROOT), sql.Literal(verifier(password))))
        return ROOT

    async def disable_root(self) -> None:
        """The role stays (it may own the tenant's objects) but can no longer log in."""
        async with await self._connect() as conn:
            if await self._role_exists(conn, ROOT):
                await conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN NOSUPERUSER PASSWORD NULL").format(
                    sql.Identifier(ROOT)))
                await self._end_sessions(conn, ROOT)

    async def inventory(self) -> dict:
        async with await self._connect() as conn:
            databases = [name for (name,) in await (await conn.execute(
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> %s ORDER BY datname",
                (ADMIN,))).fetchall()]
            roles = [name for (name,) in await (await conn.execute(TENANT_ROLES, (ADMIN, ROOT))).fetchall()]
            grants = await (await conn.execute(CONNECT_GRANTS)).fetchall()
            root = await (await conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s",
                                             (ROOT,))).fetchone()
        return {"databases": databases, "root_enabled": bool(root and root[0]),
                "users": [{"name": role, "host": "%",
                           "databases": sorted(db for user, db in grants if user == role and db in databases)}
                          for role in roles]}
