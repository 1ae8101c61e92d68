"""Create the data directory: copy a template made once per version by initdb
(cp -a of a template starts ~0.4 s sooner than initdb), then write the instance's
own settings."""
from __future__ import annotations

from pathlib import Path

from ... import templates
from . import group_file
from .engine_user import bindir, chown_to_engine_user, run

REPLICATION_CONF = "replication.conf"
# a primary's replication.conf names no source; it is never missing, because PostgreSQL
# logs a missing include_if_exists file at every read of pg_file_settings (tenant logs)
PRIMARY_REPLICATION_CONF = "# written by the Coffer agent: this instance is a primary\n"
HBA = """# written by the Coffer agent
local   all   all                 trust
local   replication   all         trust
host    all   all   0.0.0.0/0     scram-sha-256
host    all   all   ::/0          scram-sha-256
host    replication   all   0.0.0.0/0   scram-sha-256
"""


def _is_data_directory(path: Path) -> bool:
    return (path / "PG_VERSION").exists()


def _build_template(version: str, scratch: Path) -> None:
    chown_to_engine_user(scratch)
    run([str(bindir(version) / "initdb"), "-D", str(scratch), "--username=postgres", "--auth-local=trust",
         "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"], timeout=120)
    if _is_data_directory(scratch):
        with open(scratch / "postgresql.conf", "a") as conf:
            conf.write("\ninclude_if_exists = 'coffer.conf'\n")
        (scratch / "pg_hba.conf").write_text(HBA)


def ensure_template(templates_dir: Path, version: str) -> Path:
    return templates.ensure_template(templates_dir / f"postgresql-{version}", _is_data_directory,
                                     lambda scratch: _build_template(version, scratch))


def settings(address: str, port: int, socket_dir: Path, ram_mb: int) -> str:
    """Memory settings sized from the flavor, as a managed service would."""
    shared_buffers = max(16, ram_mb // 4)
    return "\n".join([
        "# written by the Coffer agent; changes are overwritten",
        f"listen_addresses = '{address}'",
        f"port = {port}",
        f"unix_socket_directories = '{socket_dir}'",
        f"shared_buffers = {shared_buffers}MB",
        f"effective_cache_size = {max(64, ram_mb * 3 // 4)}MB",
        f"work_mem = {max(1, ram_mb // 256)}MB",
        f"maintenance_work_mem = {max(16, ram_mb // 16)}MB",
        "max_connections = 100",
        "password_encryption = 'scram-sha-256'",
        "wal_retrieve_retry_interval = '100ms'",
        # a replica's source and slot (replication.py); absent on a primary
        f"include_if_exists = '{REPLICATION_CONF}'",
        # last: a configuration group's values win over the settings above
        f"include_if_exists = '{group_file.NAME}'",
        "",
    ])


def write_replication_conf(data: Path, text: str = PRIMARY_REPLICATION_CONF, keep: bool = False) -> None:
    conf = data / REPLICATION_CONF
    if keep and conf.exists():
        return
    conf.write_text(text)
    chown_to_engine_user(conf)


def ensure_data_directory(data: Path, templates_dir: Path, version: str) -> bool:
    """True when a new data directory was made."""
    if _is_data_directory(data):
        return False
    templates.copy_template(ensure_template(templates_dir, version), data)
    return True
