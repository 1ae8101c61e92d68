"""Pure placement logic: filter hosts that can take a request, weigh the rest."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Host:
    name: str
    zone: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    used_vcpus: int = 0
    used_ram_mb: int = 0
    used_disk_gb: int = 0
    datastores: frozenset[str] = frozenset()  # empty = every datastore
    generation: int = 0

    @property
    def free_ram_mb(self) -> int:
        return self.ram_mb - self.used_ram_mb


@dataclass(frozen=True)
class Request:
    instance_id: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    datastore: str
    zone: str | None = None
    avoid_hosts: frozenset[str] = field(default_factory=frozenset)  # anti-affinity


class NoValidHost(Exception):
    pass


def fits(host: Host, req: Request) -> str | None:
    """None when the host can take the request, else why not."""
    if req.zone and host.zone != req.zone:
        return f"not in zone {req.zone}"
    if host.datastores and req.datastore not in host.datastores:
        return f"does not run {req.datastore}"
    if host.name in req.avoid_hosts:
        return "anti-affinity"
    if host.vcpus - host.used_vcpus < req.vcpus:
        return "not enough vCPU"
    if host.free_ram_mb < req.ram_mb:
        return "not enough RAM"
    if host.disk_gb - host.used_disk_gb < req.disk_gb:
        return "not enough disk"
    return None


def fits_more(host: Host, vcpus: int, ram_mb: int, disk_gb: int = 0) -> str | None:
    """None when the host can take `vcpus`, `ram_mb` and `disk_gb` more (a resize of
    an instance it runs; less is always fine), else why not."""
    if vcpus > 0 and host.vcpus - host.used_vcpus < vcpus:
        return "not enough vCPU"
    if ram_mb > 0 and host.free_ram_mb < ram_mb:
        return "not enough RAM"
    if disk_gb > 0 and host.disk_gb - host.used_disk_gb < disk_gb:
        return "not enough disk"
    return None


def rank(hosts: list[Host], req: Request) -> list[Host]:
    """Hosts that fit, best first: most free RAM (spread), then name for determinism."""
    candidates = [h for h in hosts if fits(h, req) is None]
    if not candidates:
        reasons = sorted({f"{h.name}: {fits(h, req)}" for h in hosts})
        raise NoValidHost("No valid host was found. " + ("; ".join(reasons) or "no hosts declared"))
    return sorted(candidates, key=lambda h: (-h.free_ram_mb, -(h.vcpus - h.used_vcpus), h.name))


def parse_inventory(spec: str) -> list[Host]:
    """`name:zone:vcpus:ram_mb:disk_gb[:ds1+ds2]` entries separated by commas."""
    hosts = []
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        parts = entry.split(":")
        if len(parts) not in (5, 6):
            raise ValueError(f"bad host entry {entry!r}: want name:zone:vcpus:ram_mb:disk_gb[:datastores]")
        datastores = frozenset(parts[5].split("+")) if len(parts) == 6 and parts[5] else frozenset()
        hosts.append(Host(parts[0], parts[1], int(parts[2]), int(parts[3]), int(parts[4]), datastores=datastores))
    return hosts


DEFAULT_INVENTORY = "host-1:az1:16:32768:500,host-2:az2:16:32768:500,host-3:az3:16:32768:500"
