"""Public access: the API's validation of `access` (services/api/access.py) and the
forwarder's admission of clients by network (services/provisioner/drivers/forwarder.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.api import access
from services.api.faults import Fault
from services.provisioner.drivers.forwarder import Forwarder


def test_access_defaults_to_private_and_open_to_everyone_and_keeps_what_is_left_out():
    assert access.requested({}) == {"is_public": False, "allowed_cidrs": ["0.0.0.0/0", "::/0"]}
    current = {"is_public": True, "allowed_cidrs": ["10.0.0.0/8"]}
    assert access.requested({"is_public": False}, current) == {"is_public": False, "allowed_cidrs": ["10.0.0.0/8"]}
    assert access.requested({"allowed_cidrs": ["2001:db8::/32"]}, current) == {
        "is_public": True, "allowed_cidrs": ["2001:db8::/32"]}


@pytest.mark.parametrize("value, says", [
    ("public", "access must be an object"),
    ({"is_public": "yes"}, "is_public'] must be true or false"),
    ({"is_public": True, "allowed_cidrs": []}, "must be a non-empty list"),
    ({"allowed_cidrs": "10.0.0.0/8"}, "must be a non-empty list"),
    ({"allowed_cidrs": ["10.0.0.300/8"]}, "'10.0.0.300/8', which is not a CIDR"),
    ({"allowed_cidrs": ["10.0.0.5/8"]}, "has host bits set"),
    ({"allowed_cidrs": [8]}, "8, which is not a CIDR"),
    ({"allowed_cidrs": ["10.0.0.0/8", "10.0.0.0/8"]}, "twice"),
    ({"is_public": True, "floating_ip": "x"}, "access must be an object"),
])
def test_bad_access_is_a_400_naming_the_problem(value, says):
    with pytest.raises(Fault) as refused:
        access.requested(value)
    assert refused.value.status == 400 and says in refused.value.text


def test_the_forwarder_admits_only_clients_inside_an_allowed_network(tmp_path: Path):
    allowed = tmp_path / "allowed"
    allowed.write_text("127.0.0.0/30\n2001:db8::/32\n")
    forwarder = Forwarder(tmp_path / "target", allowed)
    assert forwarder.admits("127.0.0.1") and forwarder.admits("::ffff:127.0.0.2")
    assert forwarder.admits("2001:db8::1%lo")
    assert not forwarder.admits("127.0.0.5") and not forwarder.admits("::1")
    allowed.write_text("0.0.0.0/0\n::/0\n")  # read at every connection: a change applies at once
    assert forwarder.admits("127.0.0.5") and forwarder.admits("::1")
    allowed.unlink()
    assert not forwarder.admits("127.0.0.1"), "no readable list admits nobody"
    assert Forwarder(tmp_path / "target").admits("198.51.100.7"), "a replica set's endpoint admits everyone"
