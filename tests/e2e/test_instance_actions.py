"""Day-2 actions through the bus, with python-troveclient: the instance's own
actions (restart, rename, reset_status), the 422 while one runs, Trove's 400 for an
unknown action. Checked on the engine's processes."""
from __future__ import annotations

import psycopg
import pytest
import requests
from troveclient import exceptions as trove_exc

from tests.conftest import trove, wait_for
from tests.e2e.support import installed_pg_version, postmasters, wait_active, wait_gone

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pg(stack):
    client = trove(stack)
    inst = client.instances.create("actions-pg", "d1", volume={"size": 1}, datastore="postgresql",
                                   datastore_version=installed_pg_version(), databases=[{"name": "appdb"}],
                                   users=[{"name": "app", "password": "S3cret-pass",
                                           "databases": [{"name": "appdb"}]}])
    active = wait_active(client, inst.id)
    yield active
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)


def test_restart_restarts_the_engine_and_keeps_the_data(stack, pg):
    client = trove(stack)
    address = pg.ip[0]
    with psycopg.connect(host=address, user="app", password="S3cret-pass", dbname="appdb") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('before restart')")
    instance_dir = stack.home / "instances" / pg.id
    [before] = postmasters(instance_dir)

    client.instances.restart(pg.id)
    assert client.instances.get(pg.id).status in ("REBOOT", "ACTIVE")
    with pytest.raises(trove_exc.UnprocessableEntity) as refused:
        client.instances.restart(pg.id)  # a second action while the first runs
    assert "task restart running" in str(refused.value)
    wait_active(client, pg.id)

    [after] = postmasters(instance_dir)
    assert after != before, "the postmaster should be a new process"
    with psycopg.connect(host=address, user="app", password="S3cret-pass", dbname="appdb") as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("before restart",)]


def test_rename_through_put(stack, pg):
    client = trove(stack)
    client.instances.update(pg.id, name="actions-pg-renamed")
    assert client.instances.get(pg.id).name == "actions-pg-renamed"
    client.instances.update(pg.id, name="actions-pg")


def test_unknown_action_and_bad_update_answer_400(stack, pg):
    url = f"{stack.api_url}/v1.0/{stack.project}/instances/{pg.id}"
    headers = {"X-Auth-Token": stack.member_token, "Content-Type": "application/json"}
    answer = requests.post(f"{url}/action", json={"reboot_now": {}}, headers=headers, timeout=10)
    assert answer.status_code == 400 and "reboot_now" in answer.json()["badRequest"]["message"]
    answer = requests.put(url, json={"instance": {"flavor": "d2"}}, headers=headers, timeout=10)
    assert answer.status_code == 400 and "flavor" in answer.json()["badRequest"]["message"]
    answer = requests.post(f"{url}/action", json={}, headers=headers, timeout=10)
    assert answer.status_code == 400


def test_reset_status_is_for_admins_and_ends_a_stuck_action(stack, pg):
    member = trove(stack)
    with pytest.raises(trove_exc.Forbidden):
        member.instances.reset_status(pg.id)
    admin = trove(stack, stack.admin_token)
    admin.instances.reset_status(pg.id)
    shown = admin.instances.get(pg.id)
    assert shown.status == "ERROR"
    # from ERROR a restart brings it back
    member.instances.restart(pg.id)
    wait_active(member, pg.id)


def test_restart_of_mariadb_and_redis(stack):
    client = trove(stack)
    for datastore in ("mariadb", "redis"):
        versions = client.datastore_versions.list(datastore)
        inst = client.instances.create(f"actions-{datastore}", "d1", volume={"size": 1}, datastore=datastore,
                                       datastore_version=versions[0].name)
        wait_active(client, inst.id)
        pid_file = {"mariadb": "run/mariadbd.pid", "redis": "run/redis.pid"}[datastore]
        instance_dir = stack.home / "instances" / inst.id
        before = (instance_dir / pid_file).read_text().split()[0]
        client.instances.restart(inst.id)
        wait_active(client, inst.id)
        wait_for(lambda: (instance_dir / pid_file).exists(), 10, what="the new pid file")
        assert (instance_dir / pid_file).read_text().split()[0] != before
        client.instances.delete(inst.id)
        wait_gone(client, inst.id)
