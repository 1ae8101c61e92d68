"""The databases, users, grants and root of one instance as Coffer made them: pure
domain logic. The API keeps this state in its own tables and changes it when an
account action completes; the same `apply` also predicts it from the actions still
running, so a request that follows another (a grant right after the user's create)
is checked against what the instance will have, as the agent will see them in order."""
from __future__ import annotations

from dataclasses import dataclass, field

# the day-2 actions that change accounts; each is one agent verb of the same name
ACTIONS = ("create_databases", "delete_database", "create_users", "delete_user", "update_user",
           "change_passwords", "grant_access", "revoke_access", "enable_root", "disable_root")

Account = tuple[str, str]  # (name, host)


def account_id(name: str, host: str) -> str:
    """Trove's user id: name@host (the marker of user listings)."""
    return f"{name}@{host}"


def parse_account_id(value: str) -> Account:
    """`name` or `name@host` (the host is after the last @; none or empty = "%")."""
    if "@" not in value:
        return value, "%"
    name, host = value.rsplit("@", 1)
    return name, host or "%"


@dataclass
class AccountState:
    databases: set[str] = field(default_factory=set)
    users: dict[Account, set[str]] = field(default_factory=dict)  # account -> databases granted
    root_enabled: bool = False

    def copy(self) -> "AccountState":
        return AccountState(set(self.databases), {a: set(dbs) for a, dbs in self.users.items()},
                            self.root_enabled)

    def apply(self, action: str, arguments: dict) -> None:
        """What `action` with these arguments (an operation's, never secrets) changes."""
        if action == "create_databases":
            self.databases.update(db["name"] for db in arguments["databases"])
        elif action == "delete_database":
            self.databases.discard(arguments["name"])
            for granted in self.users.values():
                granted.discard(arguments["name"])
        elif action == "create_users":
            for user in arguments["users"]:
                self.users.setdefault((user["name"], user["host"]), set()).update(user.get("databases", ()))
        elif action == "delete_user":
            self.users.pop((arguments["name"], arguments["host"]), None)
        elif action == "update_user":
            old = (arguments["name"], arguments["host"])
            new = (arguments.get("new_name") or old[0], arguments.get("new_host") or old[1])
            if new != old and old in self.users:
                self.users[new] = self.users.pop(old)
        elif action == "grant_access":
            account = (arguments["name"], arguments["host"])
            if account in self.users:
                self.users[account].update(arguments["databases"])
        elif action == "revoke_access":
            self.users.get((arguments["name"], arguments["host"]), set()).discard(arguments["database"])
        elif action == "enable_root":
            self.root_enabled = True
        elif action == "disable_root":
            self.root_enabled = False
        # change_passwords changes nothing the API keeps


def found(inventory: dict, reserved_databases: frozenset[str], reserved_users: frozenset[str]) -> AccountState:
    """What an engine reported holding (coffer.instance.active.v1's accounts): its root,
    and its databases and users without the names a request may not use (the
    engine's own, never listed)."""
    state = AccountState(root_enabled=inventory["root_enabled"])
    state.databases = {db for db in inventory["databases"] if db.lower() not in reserved_databases}
    for user in inventory["users"]:
        if user["name"].lower() not in reserved_users:
            state.users[(user["name"], user["host"])] = set(user["databases"]) & state.databases
    return state
