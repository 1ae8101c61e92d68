"""Flavors every deployment starts with (the devstack Trove set; tempest uses d3/d4),
and the operator's own from COFFER_FLAVORS (`id:name:ram_mb:vcpus:disk_gb,...`)."""
import os

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import flavors

DEFAULT_FLAVORS = [
    ("d1", "ds512M", 512, 1, 5),
    ("d2", "ds1G", 1024, 1, 10),
    ("d3", "ds2G", 2048, 2, 10),
    ("d4", "ds4G", 4096, 4, 20),
]


def operator_flavors(spec: str) -> list[tuple]:
    out = []
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        parts = entry.split(":")
        if len(parts) != 5:
            raise ValueError(f"bad flavor entry {entry!r}: want id:name:ram_mb:vcpus:disk_gb")
        out.append((parts[0], parts[1], int(parts[2]), int(parts[3]), int(parts[4])))
    return out


async def seed_flavors(conn: AsyncConnection) -> None:
    known = {r.id for r in (await conn.execute(select(flavors.c.id))).all()}
    for fid, name, ram, vcpus, disk in DEFAULT_FLAVORS + operator_flavors(os.environ.get("COFFER_FLAVORS", "")):
        if fid not in known:
            await conn.execute(flavors.insert().values(id=fid, name=name, ram_mb=ram, vcpus=vcpus, disk_gb=disk))
