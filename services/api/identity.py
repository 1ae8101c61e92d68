"""Who is calling: the identity a token stands for, whichever mode validated it
(built-in tokens, `auth.BuiltinTokens`, or Keystone, `keystone.KeystoneTokens`)."""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Protocol

# Keystone's bootstrap makes admin imply member and member imply reader; built-in
# tokens carry one role and get the same implications
IMPLIED = {"admin": ("admin", "member", "reader"), "member": ("member", "reader"), "reader": ("reader",)}


@dataclass(frozen=True)
class Identity:
    project: str
    user: str
    roles: frozenset[str]

    @functools.cached_property  # asked on every request of a token the validator remembers
    def role(self) -> str:
        """The strongest of Coffer's roles this identity holds ("" for none)."""
        return next((r for r in ("admin", "member", "reader") if r in self.roles), "")


def with_implied(roles) -> frozenset[str]:
    out = set(roles)
    for role in roles:
        out.update(IMPLIED.get(role, ()))
    return frozenset(out)


class TokenValidator(Protocol):
    async def identify(self, token: str) -> Identity | None:
        """The identity `token` stands for, or None when it is not valid."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def mode() -> str:
    value = os.environ.get("COFFER_AUTH", "builtin").lower()
    if value not in ("builtin", "keystone"):
        raise ValueError(f"COFFER_AUTH must be builtin or keystone, not {value!r}")
    return value


def validator(store) -> TokenValidator:
    """The token validator the configuration asks for."""
    if mode() == "keystone":
        from .keystone import KeystoneTokens, KeystoneSettings
        return KeystoneTokens(KeystoneSettings.from_env())
    from .auth import BuiltinTokens
    return BuiltinTokens(store)
