"""An instance's public access (Trove's `access`, reference §4.4/§4.6): the local
driver's forwarder on the public address (the tests' stack sets COFFER_PUBLIC_ADDRESS
to a loopback address of its own), admitting only clients inside allowed_cidrs.
Made public at create with python-troveclient, kept through a provisioner restart,
made private and public again with the openstack CLI; checked with connections from chosen source addresses: a client
connecting to a loopback address leaves from 127.0.0.1 unless it binds another."""
from __future__ import annotations

import signal
import socket
import struct

import psycopg
import pytest
from troveclient import exceptions as trove_exc

from tests.conftest import trove, wait_for
from tests.e2e.osc_session import one_shot
from tests.e2e.support import installed_pg_version, wait_active, wait_gone

pytestmark = pytest.mark.e2e
PASSWORD = "S3cret-pass"
SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # PostgreSQL answers it with one byte, N or S


def public_entry(inst) -> dict | None:
    return next((a for a in getattr(inst, "addresses", []) if a["type"] == "public"), None)


def answered(public: dict, source: str) -> bool:
    """Whether the engine answers through the public address a client bound to `source`."""
    with socket.socket() as s:
        s.settimeout(10)
        s.bind((source, 0))
        s.connect((public["address"], public.get("port", 5432)))
        s.sendall(SSL_REQUEST)
        try:
            return s.recv(1) in (b"N", b"S")
        except ConnectionResetError:
            return False


def listening(address: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((address, port)) == 0


def osc(stack, *words: str):
    login = ["--os-auth-type", "admin_token", "--os-token", stack.member_token,
             "--os-endpoint", f"{stack.api_url}/v1.0/{stack.project}"]
    [printed] = one_shot((login, {}, ["database", *words]))
    print(f"$ {printed.command}  (exit status {printed.status})\n{printed.out}{printed.err}")
    return printed


def settled(client, instance_id: str, check):
    def ready():
        inst = client.instances.get(instance_id)
        assert inst.status != "ERROR", getattr(inst, "fault", None)
        return inst if inst.status == "ACTIVE" and inst.operating_status == "HEALTHY" and check(inst) else None
    return wait_for(ready, 30, interval=0.2, what=f"{instance_id} access applied")


@pytest.fixture(scope="module")
def public_pg(stack):
    client = trove(stack)
    inst = client.instances.create("public-pg", "d1", volume={"size": 1}, datastore="postgresql",
                                   datastore_version=installed_pg_version(), databases=[{"name": "appdb"}],
                                   users=[{"name": "app", "password": PASSWORD, "databases": [{"name": "appdb"}]}],
                                   access={"is_public": True, "allowed_cidrs": ["127.0.0.0/30"]})
    yield wait_active(client, inst.id)
    try:
        client.instances.delete(inst.id)
        wait_gone(client, inst.id)
    except trove_exc.NotFound:
        pass  # the test deleted it


def test_public_access_is_enforced_changed_and_gone_with_the_instance(stack, public_pg):
    client = trove(stack)
    assert public_pg.access == {"is_public": True, "allowed_cidrs": ["127.0.0.0/30"]}
    public = public_entry(public_pg)
    assert public and public["address"] == stack.env()["COFFER_PUBLIC_ADDRESS"], public_pg.addresses
    assert {"address": public_pg.ip[0], "type": "private"} in public_pg.addresses

    # 127.0.0.1 (any client's default source here) is in 127.0.0.0/30; 127.0.0.5 is not
    with psycopg.connect(host=public["address"], port=public.get("port", 5432), user="app", password=PASSWORD,
                         dbname="appdb", connect_timeout=10) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("appdb",)
    assert not answered(public, "127.0.0.5"), "a client outside allowed_cidrs must be closed at once"

    # the forwarder outlives a provisioner restart, and its connections too
    log = stack.home / "logs" / "provisioner.log"
    restores = log.read_text().count("instances restored")
    with psycopg.connect(host=public["address"], port=public.get("port", 5432), user="app", password=PASSWORD,
                         dbname="appdb", connect_timeout=10) as held:
        stack.procs["provisioner"].send_signal(signal.SIGKILL)
        stack.procs["provisioner"].wait()
        stack.start_service("provisioner")
        wait_for(lambda: log.read_text().count("instances restored") > restores, 60, what="the provisioner back")
        assert held.execute("SELECT 1").fetchone() == (1,)
    assert answered(public, "127.0.0.1") and not answered(public, "127.0.0.5")

    with pytest.raises(trove_exc.BadRequest) as bad:
        client.instances.update(public_pg.id, is_public=True, allowed_cidrs=["10.0.0.300/8"])
    assert "'10.0.0.300/8', which is not a CIDR" in str(bad.value)

    made_private = osc(stack, "instance", "update", public_pg.id, "--is-private")
    assert made_private.status == 0 and made_private.out == "", made_private.err
    private = settled(client, public_pg.id, lambda i: not i.access["is_public"])
    assert public_entry(private) is None, private.addresses
    assert not listening(public["address"], public.get("port", 5432)), "the public port should be closed"

    made_public = osc(stack, "instance", "update", public_pg.id, "--is-public", "--allowed-cidr", "127.0.0.4/30")
    assert made_public.status == 0 and made_public.out == "", made_public.err
    again = settled(client, public_pg.id, lambda i: public_entry(i) is not None)
    assert again.access == {"is_public": True, "allowed_cidrs": ["127.0.0.4/30"]}
    public = public_entry(again)
    assert answered(public, "127.0.0.5") and not answered(public, "127.0.0.1")
    shown = osc(stack, "instance", "show", public_pg.id, "-f", "json").json()
    assert shown["public"] is True and shown["allowed_cidrs"] == ["127.0.0.4/30"]

    client.instances.delete(public_pg.id)
    wait_gone(client, public_pg.id)
    assert not listening(public["address"], public.get("port", 5432)), "the forwarder should go with the instance"
