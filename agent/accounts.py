"""The accounts capability: databases, users, their grants and root, the way each
engine has them. Each plugin implements it in its own mixin
(agent/datastores/<engine>/accounts.py), added to its Manager's bases; the verbs
in agent/verbs/accounts.py call it. Every method is idempotent: a command may run
again after an agent restart."""
from __future__ import annotations

from abc import ABC, abstractmethod

from .manager import UserSpec


class Accounts(ABC):
    @abstractmethod
    async def create_databases(self, databases: list[dict]) -> None:
        """[{name, character_set?, collate?}]; existing ones are left as they are."""

    @abstractmethod
    async def delete_database(self, name: str) -> None:
        """Drop it, with whatever access was granted on it."""

    @abstractmethod
    async def create_users(self, users: list[UserSpec]) -> None:
        """Create (or reset the password of) each user and grant its databases."""

    @abstractmethod
    async def delete_user(self, name: str, host: str) -> None: ...

    @abstractmethod
    async def rename_user(self, name: str, host: str, new_name: str, new_host: str) -> None:
        """The password keeps working under the new name."""

    @abstractmethod
    async def set_passwords(self, users: list[UserSpec]) -> None: ...

    @abstractmethod
    async def grant(self, name: str, host: str, databases: list[str]) -> None:
        """All privileges on these databases."""

    @abstractmethod
    async def revoke(self, name: str, host: str, database: str) -> None:
        """The user can no longer reach the database."""

    @abstractmethod
    async def enable_root(self, password: str) -> str:
        """Make the engine's all-powerful tenant account usable with this password;
        its name."""

    @abstractmethod
    async def disable_root(self) -> None:
        """Root's password stops working, for new and open sessions."""

    @abstractmethod
    async def inventory(self) -> dict:
        """The tenant's databases and users as the engine has them, for data that came
        from a copy: {"databases": [name], "users": [{name, host, databases}],
        "root_enabled": whether root can log in}. Never the engine's own accounts
        (the agent's, replication's, root's) among the users, nor a password."""
