"""What each datastore accepts as database and user names, and whether it has
databases and host-restricted users at all (data, per datastore)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NamingRules:
    database_max: int
    user_max: int
    reserved_databases: frozenset[str]
    reserved_users: frozenset[str]
    has_databases: bool = True
    has_hosts: bool = False  # accounts are user@host (MySQL); elsewhere the host is always "%"
    # a replica's accounts come from its primary (PostgreSQL, MySQL); Redis replicas keep ACL users of their own
    replicas_copy_accounts: bool = True


_MYSQL = NamingRules(64, 32, frozenset({"mysql", "information_schema", "performance_schema", "sys"}),
                     frozenset({"root", "os_admin", "mysql.sys", "mariadb.sys"}), has_hosts=True)

RULES = {
    "postgresql": NamingRules(63, 63, frozenset({"postgres", "template0", "template1"}),
                              frozenset({"postgres", "root", "os_admin"})),
    "mariadb": _MYSQL,
    "mysql": _MYSQL,
    "redis": NamingRules(0, 64, frozenset(), frozenset({"default"}), has_databases=False,
                         replicas_copy_accounts=False),
}
# a datastore the API learns of without rules of its own gets the strictest common ones
STRICT = NamingRules(63, 32, frozenset(), frozenset({"root", "os_admin"}))


def rules_for(datastore: str) -> NamingRules:
    return RULES.get(datastore, STRICT)


def has_accounts(datastore: str) -> bool:
    """Whether Coffer manages users (and root) on this datastore's instances."""
    return datastore in RULES
