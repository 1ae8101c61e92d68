"""Databases and users, through the local socket as the postgres superuser."""
from __future__ import annotations

import psycopg
from psycopg import sql

from ...manager import UserSpec
from .scram import verifier


AGENT_SESSION = "-c log_statement=none -c log_min_duration_statement=-1"


async def connect(socket_dir: str, port: int, dbname: str = "postgres") -> psycopg.AsyncConnection:
    # the agent's own statements stay out of the tenant's general and slow query logs
    return await psycopg.AsyncConnection.connect(host=socket_dir, port=port, user="postgres",
                                                 dbname=dbname, autocommit=True, connect_timeout=5,
                                                 options=AGENT_SESSION)


async def create_databases(conn: psycopg.AsyncConnection, databases: list[dict]) -> None:
    for db in databases:
        exists = await (await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                           (db["name"],))).fetchone()
        if not exists:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["name"]))
            if db.get("character_set"):
                query += sql.SQL(" ENCODING {} TEMPLATE template0").format(sql.Literal(db["character_set"]))
            if db.get("collate"):
                query += sql.SQL(" LC_COLLATE {}").format(sql.Literal(db["collate"]))
            await conn.execute(query)
            # only the users it is granted to may connect (PostgreSQL lets everyone by default)
            await conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db["name"])))


async def create_users(conn: psycopg.AsyncConnection, socket_dir: str, port: int,
                       users: list[UserSpec]) -> None:
    for user in users:
        role = sql.Identifier(user.name)
        exists = await (await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                           (user.name,))).fetchone()
        verb = "ALTER" if exists else "CREATE"
        await conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
            role, sql.Literal(verifier(user.password))))
        for dbname in user.databases:
            await grant_database(conn, socket_dir, port, user.name, dbname)


async def grant_database(conn: psycopg.AsyncConnection, socket_dir: str, port: int, user: str, dbname: str) -> None:
    """All privileges on the database and on its public schema."""
    role = sql.Identifier(user)
    await conn.execute(sql.SQL("GRANT ALL PRIVILEGES ON DATABASE {} TO {}").format(sql.Identifier(dbname), role))
    # PostgreSQL 15 no longer lets everyone create in public: grant it
    async with await connect(socket_dir, port, dbname) as dbconn:
        await dbconn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(role))
