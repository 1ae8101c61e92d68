"""Create the data directory: copy a template made once per version by
mariadb-install-db (a copy starts ~0.4 s sooner), then write the instance's own
settings. The template is small: an 8 MB redo log instead of the default 96 MB;
the server resizes it to the instance's size at its first start."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from .engine_user import (ENGINE_USER, INSTALL_DB, EngineCommandError, admin_user,
                          chown_to_engine_user, run, running_as_root)

TEMPLATE_REDO_LOG = "8M"

# Run once in the template after the system tables are made: the proxy grant
# install-db gives root@<this host's name> is useless (and warned about at every
# start) under skip-name-resolve.
TEMPLATE_SQL = "DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';\n"


def is_data_directory(path: Path) -> bool:
    return (path / "ibdata1").is_file() and (path / "mysql" / "global_priv.frm").is_file()


def ensure_template(templates_dir: Path, version: str) -> Path:
    template = templates_dir / f"mariadb-{version}"
    if is_data_directory(template):
        return template
    templates_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(templates_dir, 0o755)
    # several agents may race to make it: each builds its own and renames atomically
    token = uuid.uuid4().hex
    scratch = templates_dir / f".mariadb-{version}-{token}"
    extra = templates_dir / f".mariadb-{version}-{token}.sql"
    scratch.mkdir(mode=0o700)
    chown_to_engine_user(scratch)
    extra.write_text(TEMPLATE_SQL)
    argv = [str(INSTALL_DB), "--no-defaults", f"--datadir={scratch}", "--skip-test-db", "--skip-name-resolve",
            # root@localhost: an unusable password, or the OS user root over the socket;
            # no second all-powerful account for the OS user mysql
            "--auth-root-authentication-method=socket", f"--auth-root-socket-user={admin_user()}",
            f"--extra-file={extra}", f"--innodb-log-file-size={TEMPLATE_REDO_LOG}"]
    if running_as_root():
        argv.append(f"--user={ENGINE_USER}")
    try:
        output = run(argv, timeout=180, as_engine=False)
        # with SIGCHLD ignored, a failed install would look like a success: check the result
        if not is_data_directory(scratch):
            raise EngineCommandError(f"mariadb-install-db made no data directory: {output.strip()[-800:]}")
        for path in [scratch, *scratch.rglob("*")]:  # e.g. mysql_upgrade_info is left to root
            chown_to_engine_user(path)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        extra.unlink(missing_ok=True)
    try:
        scratch.rename(template)
    except OSError:  # another agent won the race
        shutil.rmtree(scratch, ignore_errors=True)
    return template


def ensure_data_directory(data: Path, templates_dir: Path, version: str) -> bool:
    """True when a new data directory was made."""
    if is_data_directory(data):
        return False
    template = ensure_template(templates_dir, version)
    partial = data.with_name(data.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    # as root: it keeps the template's owner (mysql) and may write in the instance directory
    run(["cp", "-a", str(template), str(partial)], timeout=120, as_engine=False)
    os.chmod(partial, 0o700)
    partial.rename(data)
    return True
