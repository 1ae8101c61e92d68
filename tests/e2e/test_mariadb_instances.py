"""MariaDB instances, served as the datastores `mariadb` and `mysql`, through
python-troveclient against the whole stack as processes, checked with a real
MySQL client (PyMySQL) over the instance's own address."""
from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pymysql
import pytest

from tests.conftest import trove, wait_for
from tests.e2e.support import wait_active, wait_gone

pytestmark = pytest.mark.e2e

MARIADBD = Path("/usr/sbin/mariadbd")


def installed_mariadb_version() -> str:
    """The version name the provisioner offers: major.minor of the installed server."""
    out = subprocess.run([str(MARIADBD), "--version"], capture_output=True, text=True, timeout=10).stdout
    return re.search(r"Ver (\d+\.\d+)\.\d+", out).group(1)


def mariadbd_processes(instance_dir: Path) -> list[int]:
    """Servers started with the instance's option file (--defaults-file=<dir>/my.cnf)."""
    marker = str(instance_dir).encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"mariadbd") and any(marker in arg for arg in argv[1:]):
                pids.append(int(proc.name))
    return pids


@pytest.mark.skipif(not MARIADBD.exists(), reason="MariaDB is not installed")
@pytest.mark.parametrize("datastore", ["mariadb", "mysql"])
def test_create_connect_delete(stack, datastore):
    client = trove(stack)
    version = installed_mariadb_version()
    offered = [v.name for v in client.datastore_versions.list(datastore)]
    assert version in offered, f"{datastore} offers {offered}"

    started = time.monotonic()
    inst = client.instances.create(f"{datastore}-1", "d1", volume={"size": 1}, datastore=datastore,
                                   datastore_version=version, databases=[{"name": "appdb"}],
                                   users=[{"name": "app", "password": "S3cret-pass",
                                           "databases": [{"name": "appdb"}]}])
    assert inst.status == "BUILD"
    active = wait_active(client, inst.id)
    print(f"\n{datastore} {version}: create -> ACTIVE/HEALTHY in {time.monotonic() - started:.2f} s")
    assert active.datastore["type"] == datastore
    assert active.datastore["version"] == version
    listed = {i.id: i for i in client.instances.list()}
    address = listed[inst.id].addresses[0]["address"]
    assert address == active.ip[0] and address.startswith("127.")

    login = {"host": address, "port": 3306, "user": "app", "connect_timeout": 5}
    with pymysql.connect(**login, password="S3cret-pass", database="appdb") as conn:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)")
            cur.execute("INSERT INTO notes VALUES (1, 'hello')")
            conn.commit()
            cur.execute("SELECT body FROM notes")
            assert cur.fetchall() == (("hello",),)
            # only what was granted: not the system schema
            cur.execute("SHOW DATABASES")
            assert {row[0] for row in cur.fetchall()} == {"appdb", "information_schema"}
            with pytest.raises(pymysql.err.OperationalError) as denied:
                cur.execute("SELECT * FROM mysql.user")
            assert denied.value.args[0] in (1142, 1044)  # table / database access denied
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(**login, password="wrong", database="appdb")
    assert refused.value.args[0] == 1045
    with pytest.raises(pymysql.err.OperationalError) as no_db:
        pymysql.connect(**login, password="S3cret-pass", database="mysql")
    assert no_db.value.args[0] == 1044

    instance_dir = stack.home / "instances" / inst.id
    assert len(mariadbd_processes(instance_dir)) == 1, "the instance's mariadbd should be running, once"
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)
    wait_for(lambda: not mariadbd_processes(instance_dir), 10, what="mariadbd to end")
    assert not instance_dir.exists(), "the instance directory should be deleted"
