"""Databases and users, through the instance's socket as the admin account.

Blocking PyMySQL (the manager runs it in a thread). A password never reaches the
server in clear: the agent sends its mysql_native_password hash (IDENTIFIED BY
PASSWORD '*...'), so no statement, binary log or error log can hold it. Nothing
here logs a statement."""
from __future__ import annotations

import hashlib

import pymysql

from ...manager import UserSpec


def connect(socket_path: str, user: str) -> pymysql.connections.Connection:
    # no password: the admin account is admitted by unix_socket authentication; no TLS
    # on a local socket (PyMySQL would otherwise spend ~70 ms loading CA certificates);
    # the agent's own statements stay out of the tenant's general and slow query logs
    return pymysql.connect(unix_socket=socket_path, user=user, autocommit=True, charset="utf8mb4",
                           ssl_disabled=True, connect_timeout=5, read_timeout=30, write_timeout=30,
                           init_command="SET SESSION sql_log_off = 1, SESSION long_query_time = 31536000")


def native_hash(password: str) -> str:
    """mysql_native_password's stored form: '*' and SHA1(SHA1(password)) in hex."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def grant_pattern(database: str) -> str:
    """A database name as GRANT ... ON `db`.* reads it (and mysql.db stores it), where
    _ and % are wildcards: escaped, so app_db is granted and not also appXdb."""
    return database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def grant_target(database: str) -> str:
    return identifier(grant_pattern(database))


def grant(cur, account: tuple[str, str], database: str) -> None:
    cur.execute(f"GRANT ALL PRIVILEGES ON {grant_target(database)}.* TO %s@%s", account)


def create_databases(conn, databases: list[dict]) -> None:
    with conn.cursor() as cur:
        for db in databases:
            query, args = f"CREATE DATABASE IF NOT EXISTS {identifier(db['name'])}", []
            if db.get("character_set"):
                query += " CHARACTER SET %s"
                args.append(db["character_set"])
            if db.get("collate"):
                query += " COLLATE %s"
                args.append(db["collate"])
            cur.execute(query, args or None)


def create_users(conn, users: list[UserSpec]) -> None:
    with conn.cursor() as cur:
        for user in users:
            account = (user.name, user.host or "%")
            cur.execute("SELECT 1 FROM mysql.global_priv WHERE User = %s AND Host = %s", account)
            verb = "ALTER" if cur.fetchone() else "CREATE"
            cur.execute(verb + " USER %s@%s IDENTIFIED BY PASSWORD %s", (*account, native_hash(user.password)))
            for database in user.databases:
                grant(cur, account, database)


def prepare(socket_path: str, admin: str, databases: list[dict], users: list[UserSpec]) -> None:
    conn = connect(socket_path, admin)
    try:
        create_databases(conn, databases)
        create_users(conn, users)
    finally:
        conn.close()
