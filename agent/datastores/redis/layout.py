"""Where an instance's Redis files live, the settings the agent writes, and the
agent's own admin user. Stdlib only: bootstrap uses it before anything heavy.

    <instance>/redis.conf       written by the agent on every bootstrap (root-owned, no secrets)
    <instance>/configuration.conf  a configuration group's values, included last by redis.conf
    <instance>/redis.log        the server's log (owned by redis)
    <instance>/admin.password   the agent's admin password (root, 0600)
    <instance>/run/             redis.pid and redis.sock (owned by redis, 0700)
    <instance>/data/            dir: appendonlydir, dump.rdb, users.acl (owned by redis, 0700)

The agent talks to its engine as ADMIN_USER over the Unix socket: Redis ACLs apply
to every transport, so once the default user is off the socket needs a password
too; the socket (0700, in a 0700 directory) keeps the admin connection and its
AUTH off the network and out of reach of every OS user but root and redis."""
from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .engine_user import chown_to_engine_user

# a name the API's user-name rules never accept (no dots), so no tenant user collides
ADMIN_USER = "coffer.admin"
RESERVED_USERS = frozenset({"default", ADMIN_USER})
MAXMEMORY_SHARE = 0.75  # of the flavor's RAM; the rest is for forks (AOF rewrite) and overhead
MAXMEMORY_POLICY = "volatile-lru"  # evict only keys the application gave a TTL, never the others
SUN_PATH_MAX = 107  # sockaddr_un.sun_path less its NUL; Redis silently truncates longer paths


@dataclass(frozen=True)
class Layout:
    directory: Path

    @property
    def conf(self) -> Path:
        return self.directory / "redis.conf"

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    @property
    def password_file(self) -> Path:
        return self.directory / "admin.password"

    @property
    def run_dir(self) -> Path:
        return self.directory / "run"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "redis.pid"

    @property
    def socket(self) -> Path | None:
        """The admin socket, or None when its path is too long for a Unix socket
        (the agent then connects over TCP to the instance's address)."""
        path = self.run_dir / "redis.sock"
        return path if len(os.fsencode(path)) <= SUN_PATH_MAX else None

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def aclfile(self) -> Path:
        return self.data / "users.acl"

    @property
    def group_file(self) -> Path:  # a configuration group's values (group_file.py)
        return self.directory / "configuration.conf"

    @property
    def logging_file(self) -> Path:  # the guest logs switched on (logs.py), included after the group
        return self.directory / "logging.conf"


def password_hash(password: str) -> str:
    """Redis's own form of a password (ACL SETUSER #<hash>): the clear password
    never reaches the server, its files or its error messages."""
    return hashlib.sha256(password.encode()).hexdigest()


def admin_password(layout: Layout) -> str:
    """Made once per instance, readable by root only."""
    try:
        return layout.password_file.read_text().strip()
    except FileNotFoundError:
        pass
    password = secrets.token_urlsafe(32)
    scratch = layout.password_file.with_name(f".admin.password.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password)
    try:
        os.link(scratch, layout.password_file)  # never replaces one made meanwhile
    except FileExistsError:
        pass
    finally:
        scratch.unlink()
    return layout.password_file.read_text().strip()


def quoted(value) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def directives(layout: Layout, address: str, port: int, ram_mb: int) -> dict[str, str]:
    """The settings the agent writes, as the file has them."""
    maxmemory_mb = max(1, int(ram_mb * MAXMEMORY_SHARE))
    socket = layout.socket
    return {
        "bind": address,
        "port": str(port),
        "protected-mode": "no",  # ACLs guard access
        **({"unixsocket": quoted(socket)} if socket else {}),  # none when its path is too long
        "unixsocketperm": "700",
        "daemonize": "no",  # the agent starts it detached, in a session of its own
        "supervised": "no",
        "set-proc-title": "no",  # the command line keeps this file's path, so the instance's processes are found
        "pidfile": quoted(layout.pidfile),
        "logfile": quoted(layout.log),
        "loglevel": "notice",
        "dir": quoted(layout.data),
        "aclfile": quoted(layout.aclfile),  # users live there only, never in this file
        "appendonly": "yes",
        "appendfsync": "everysec",
        "maxmemory": f"{maxmemory_mb}mb",
        "maxmemory-policy": MAXMEMORY_POLICY,
        "repl-diskless-sync": "yes",
        "repl-diskless-sync-delay": "0",
    }


def settings(layout: Layout, address: str, port: int, ram_mb: int) -> str:
    lines = ["# written by the Coffer agent; changes are overwritten"]
    lines += [f"{name} {value}" for name, value in directives(layout, address, port, ram_mb).items()]
    # last: a configuration group's values win over the settings above
    lines += [f"include {quoted(layout.group_file)}", f"include {quoted(layout.logging_file)}", ""]
    return "\n".join(lines)


def _write_owned(path: Path, text: str, mode: int) -> None:
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    chown_to_engine_user(scratch)
    scratch.rename(path)


def write_aclfile(layout: Layout, password: str) -> None:
    """Before the server starts: the users it saved (ACL SAVE) stay as they are;
    the admin user is (re)written with the current admin password. A new instance
    starts with the default user open, as Redis does, until users are created."""
    try:
        kept = [line for line in layout.aclfile.read_text().splitlines()
                if line.strip() and line.split()[:2] != ["user", ADMIN_USER]]
    except FileNotFoundError:
        kept = ["user default on nopass ~* &* +@all"]
    admin = f"user {ADMIN_USER} on #{password_hash(password)} ~* &* +@all"
    _write_owned(layout.aclfile, "\n".join(kept + [admin]) + "\n", 0o600)
