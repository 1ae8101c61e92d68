"""Create the data directory: copy a template made once per version by
mariadb-install-db (a copy starts ~0.4 s sooner), then write the instance's own
settings. The template is small: an 8 MB redo log instead of the default 96 MB;
the server resizes it to the instance's size at its first start."""
from __future__ import annotations

from pathlib import Path

from ... import templates
from .engine_user import (ENGINE_USER, INSTALL_DB, admin_user, chown_to_engine_user, run_as_agent,
                          running_as_root)

TEMPLATE_REDO_LOG = "8M"

# Run once in the template after the system tables are made: the proxy grant
# install-db gives root@<this host's name> is useless (and warned about at every
# start) under skip-name-resolve.
TEMPLATE_SQL = "DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';\n"


def is_data_directory(path: Path) -> bool:
    return (path / "ibdata1").is_file() and (path / "mysql" / "global_priv.frm").is_file()


def _build_template(version: str, scratch: Path) -> None:
    chown_to_engine_user(scratch)
    extra = scratch.with_name(scratch.name + ".sql")
    extra.write_text(TEMPLATE_SQL)
    argv = [str(INSTALL_DB), "--no-defaults", f"--datadir={scratch}", "--skip-test-db", "--skip-name-resolve",
            # root@localhost: an unusable password, or the OS user root over the socket;
            # no second all-powerful account for the OS user mysql
            "--auth-root-authentication-method=socket", f"--auth-root-socket-user={admin_user()}",
            f"--extra-file={extra}", f"--innodb-log-file-size={TEMPLATE_REDO_LOG}"]
    if running_as_root():
        argv.append(f"--user={ENGINE_USER}")
    try:
        run_as_agent(argv, timeout=180)
    finally:
        extra.unlink(missing_ok=True)
    for path in [scratch, *scratch.rglob("*")]:  # e.g. mysql_upgrade_info is left to root
        chown_to_engine_user(path)


def ensure_template(templates_dir: Path, version: str) -> Path:
    return templates.ensure_template(templates_dir / f"mariadb-{version}", is_data_directory,
                                     lambda scratch: _build_template(version, scratch))


def ensure_data_directory(data: Path, templates_dir: Path, version: str) -> bool:
    """True when a new data directory was made."""
    if is_data_directory(data):
        return False
    templates.copy_template(ensure_template(templates_dir, version), data)
    return True
