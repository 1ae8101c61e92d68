"""The instance's option file: where it listens and keeps its files, memory sized
from the flavor as a managed service would, and binary logging for replication.

mariadbd reads only this file (`--defaults-file` as its first argument), never
/etc/mysql: the host's own server settings must not leak into instances."""
from __future__ import annotations

import ipaddress
import zlib
from dataclasses import dataclass
from pathlib import Path

from . import group_file
from .engine_user import ENGINE_USER, running_as_root

SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with its terminating NUL


@dataclass(frozen=True)
class Paths:
    """Where an instance keeps its files, all inside its directory."""
    directory: Path

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def run_dir(self) -> Path:  # owned by mysql, mode 0700: only it and root reach the socket
        return self.directory / "run"

    @property
    def socket(self) -> Path:
        return self.run_dir / "mysqld.sock"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "mariadbd.pid"

    @property
    def options(self) -> Path:
        return self.directory / "my.cnf"

    @property
    def log(self) -> Path:
        return self.directory / "mariadb.log"

    @property
    def logging_options(self) -> Path:  # the guest logs switched on (logs.py); may not exist
        return self.directory / "logging.cnf"


def _round_down(mb: int, step: int) -> int:
    return mb // step * step if mb >= step else mb


def memory(ram_mb: int) -> dict[str, str]:
    """Half the flavor's RAM for InnoDB's buffer pool up to 1 GiB flavors, three
    quarters above (the rest is the server's own and the connections' buffers);
    a redo log of a quarter of the pool, a log buffer that grows with the flavor;
    Trove's own MySQL template's scale for connections (100 per 512 MB) and the
    table cache; temporary tables and the MyISAM/Aria caches in proportion."""
    ram_mb = max(ram_mb, 256)
    # a multiple of the 128 MB chunk, or the server rounds it up, above the flavor's share
    pool = _round_down(max(64, ram_mb // 2 if ram_mb <= 1024 else ram_mb * 3 // 4), 128)
    return {
        "innodb_buffer_pool_size": f"{pool}M",
        "innodb_log_file_size": f"{min(1024, max(16, pool // 4))}M",
        # the server keeps it twice, touched: the default 16 MB costs a small instance ~12 MB
        "innodb_log_buffer_size": f"{min(16, max(4, ram_mb // 128))}M",
        "max_connections": str(min(2000, max(50, 100 * ram_mb // 512))),
        "table_open_cache": str(min(4000, max(200, ram_mb // 2))),
        "tmp_table_size": f"{min(256, max(16, ram_mb // 32))}M",
        "max_heap_table_size": f"{min(256, max(16, ram_mb // 32))}M",
        "key_buffer_size": f"{min(128, max(8, ram_mb // 64))}M",       # MyISAM indexes only
        "aria_pagecache_buffer_size": f"{min(128, max(8, ram_mb // 32))}M",  # on-disk temporary tables
    }


def server_id(address: str, instance_id: str) -> int:
    """Unique among the instances of one network, as replication needs: the IPv4
    address as a number, else a hash of the instance's id (never 0)."""
    try:
        number = int(ipaddress.IPv4Address(address))
    except ValueError:
        number = zlib.crc32(instance_id.encode())
    return number or 1


def server_options(paths: Paths, address: str, port: int, ram_mb: int, instance_id: str) -> dict[str, str]:
    """The [mariadbd] options the agent sets, as written in the file."""
    return {
        **({"user": ENGINE_USER} if running_as_root() else {}),  # never run as root, however started
        "datadir": str(paths.data),
        "socket": str(paths.socket),
        "pid-file": str(paths.pid_file),
        "bind-address": address,
        "port": str(port),
        "skip-name-resolve": "ON",
        "local-infile": "OFF",
        "character-set-server": "utf8mb4",
        "collation-server": "utf8mb4_general_ci",
        # statements (so passwords, though the agent sends only hashes) stay out of logs
        "general-log": "OFF",
        "slow-query-log": "OFF",
        **memory(ram_mb),
        # ready to be a replication source: row-based binary log, a unique server id
        "server-id": str(server_id(address, instance_id)),
        "log-bin": "mysql-bin",  # in the data directory
        "binlog-format": "ROW",
        "max-binlog-size": "64M",
        "binlog-expire-logs-seconds": str(3 * 86400),
    }


def options(paths: Paths, address: str, port: int, ram_mb: int, instance_id: str) -> str:
    if len(str(paths.socket)) > SOCKET_PATH_MAX:
        raise ValueError(f"socket path {paths.socket} is longer than {SOCKET_PATH_MAX} bytes")
    server = server_options(paths, address, port, ram_mb, instance_id)
    lines = ["# written by the Coffer agent; changes are overwritten", "[mariadbd]"]
    lines += [f"{key} = {value}" for key, value in server.items()]
    # so an operator can run `mariadb --defaults-file=<this file>` on the host
    lines += ["", "[client]", f"socket = {paths.socket}", ""]
    # last: a configuration group's values win over the settings above
    lines += [f"!include {group_file.path(paths.directory)}"]
    # then the guest logs a tenant switched on (a missing file is skipped)
    lines += [f"!include {paths.logging_options}", ""]
    return "\n".join(lines)
