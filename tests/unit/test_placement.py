"""services/scheduler/placement.py: filtering and weighing hosts."""
from __future__ import annotations

import pytest

from services.scheduler.placement import (
    DEFAULT_INVENTORY,
    Host,
    NoValidHost,
    Request,
    fits,
    fits_more,
    parse_inventory,
    rank,
)


def host(name="h1", zone="az1", vcpus=8, ram_mb=16384, disk_gb=200, **kw) -> Host:
    return Host(name, zone, vcpus, ram_mb, disk_gb, **kw)


def req(vcpus=2, ram_mb=2048, disk_gb=20, datastore="mysql", **kw) -> Request:
    return Request("inst-1", vcpus, ram_mb, disk_gb, datastore, **kw)


def names(hosts: list[Host]) -> list[str]:
    return [h.name for h in hosts]


# --- fits ---------------------------------------------------------------------

def test_fits_when_there_is_room():
    assert fits(host(), req()) is None


def test_fits_exactly_at_capacity():
    h = host(vcpus=4, ram_mb=4096, disk_gb=40, used_vcpus=2, used_ram_mb=2048, used_disk_gb=20)
    assert fits(h, req(vcpus=2, ram_mb=2048, disk_gb=20)) is None


@pytest.mark.parametrize(
    "h, r, reason",
    [
        (host(zone="az1"), req(zone="az2"), "not in zone az2"),
        (host(datastores=frozenset({"postgresql"})), req(datastore="mysql"), "does not run mysql"),
        (host(name="h1"), req(avoid_hosts=frozenset({"h1"})), "anti-affinity"),
        (host(vcpus=8, used_vcpus=7), req(vcpus=2), "not enough vCPU"),
        (host(ram_mb=4096, used_ram_mb=3000), req(ram_mb=2048), "not enough RAM"),
        (host(disk_gb=100, used_disk_gb=90), req(disk_gb=20), "not enough disk"),
    ],
    ids=["zone", "datastore", "anti-affinity", "vcpu", "ram", "disk"],
)
def test_fits_names_the_reason(h, r, reason):
    assert fits(h, r) == reason


def test_host_without_datastore_list_runs_every_datastore():
    assert fits(host(datastores=frozenset()), req(datastore="anything")) is None
    assert fits(host(datastores=frozenset({"mysql", "postgresql"})), req(datastore="postgresql")) is None


def test_request_without_zone_accepts_any_zone():
    assert fits(host(zone="az3"), req(zone=None)) is None


# --- rank ---------------------------------------------------------------------

def test_rank_spreads_to_most_free_ram():
    hosts = [
        host("a", used_ram_mb=8000),
        host("b", used_ram_mb=0),
        host("c", used_ram_mb=4000),
    ]
    assert names(rank(hosts, req())) == ["b", "c", "a"]


def test_rank_breaks_ties_by_name_whatever_the_input_order():
    hosts = [host("h3"), host("h1"), host("h2")]
    assert names(rank(hosts, req())) == ["h1", "h2", "h3"]
    assert names(rank(list(reversed(hosts)), req())) == ["h1", "h2", "h3"]


def test_rank_drops_hosts_that_do_not_fit():
    hosts = [
        host("wrong-zone", zone="az2"),
        host("no-mysql", datastores=frozenset({"postgresql"})),
        host("avoided"),
        host("full-cpu", used_vcpus=8),
        host("full-ram", used_ram_mb=16000),
        host("full-disk", used_disk_gb=199),
        host("ok-small", used_ram_mb=10000),
        host("ok-big"),
    ]
    r = req(zone="az1", avoid_hosts=frozenset({"avoided"}))
    assert names(rank(hosts, r)) == ["ok-big", "ok-small"]


def test_no_valid_host_message_names_each_hosts_reason():
    hosts = [host("h1", datastores=frozenset({"redis"})), host("h2", used_ram_mb=16000), host("h3")]
    r = req(avoid_hosts=frozenset({"h3"}))
    with pytest.raises(NoValidHost) as err:
        rank(hosts, r)
    message = str(err.value)
    assert message.startswith("No valid host was found.")
    assert "h1: does not run mysql" in message
    assert "h2: not enough RAM" in message
    assert "h3: anti-affinity" in message


def test_no_valid_host_with_empty_inventory():
    with pytest.raises(NoValidHost, match=r"^No valid host was found\."):
        rank([], req())


# --- inventory ----------------------------------------------------------------

def test_parse_inventory_reads_every_field():
    hosts = parse_inventory("a:az1:16:32768:500, b:az2:4:8192:100:mysql+postgresql")
    assert hosts == [
        Host("a", "az1", 16, 32768, 500),
        Host("b", "az2", 4, 8192, 100, datastores=frozenset({"mysql", "postgresql"})),
    ]
    assert hosts[0].used_vcpus == hosts[0].used_ram_mb == hosts[0].used_disk_gb == 0


def test_parse_inventory_empty_datastores_field_means_all():
    assert parse_inventory("a:az1:1:1024:10:")[0].datastores == frozenset()


def test_parse_inventory_skips_empty_entries():
    assert names(parse_inventory(",a:az1:1:1024:10,,")) == ["a"]


@pytest.mark.parametrize(
    "spec",
    ["a:az1:16:32768", "a:az1:16:32768:500:mysql:extra", "a:az1:lots:32768:500", "justaname"],
    ids=["too-few", "too-many", "not-a-number", "no-colons"],
)
def test_parse_inventory_rejects_bad_entries(spec):
    with pytest.raises(ValueError):
        parse_inventory(spec)


def test_default_inventory_is_three_hosts_in_three_zones():
    hosts = parse_inventory(DEFAULT_INVENTORY)
    assert len(hosts) == 3
    assert sorted(h.zone for h in hosts) == ["az1", "az2", "az3"]
    assert len({h.name for h in hosts}) == 3


def test_a_resize_needs_room_for_the_difference_only():
    busy = host(vcpus=4, ram_mb=4096, used_vcpus=3, used_ram_mb=3584)
    assert fits_more(busy, 0, 512) is None           # exactly the free RAM
    assert fits_more(busy, 0, 513) == "not enough RAM"
    assert fits_more(busy, 2, 0) == "not enough vCPU"
    assert fits_more(busy, -2, -3000) is None         # a smaller flavor always fits
    free_disk = busy.disk_gb - busy.used_disk_gb
    assert fits_more(busy, 0, 0, free_disk) is None and fits_more(busy, 0, 0, free_disk + 1) == "not enough disk"
