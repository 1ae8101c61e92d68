"""Flavors every deployment starts with (the devstack Trove set; tempest uses d3/d4)."""
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import flavors

DEFAULT_FLAVORS = [
    ("d1", "ds512M", 512, 1, 5),
    ("d2", "ds1G", 1024, 1, 10),
    ("d3", "ds2G", 2048, 2, 10),
    ("d4", "ds4G", 4096, 4, 20),
]


async def seed_flavors(conn: AsyncConnection) -> None:
    known = {r.id for r in (await conn.execute(select(flavors.c.id))).all()}
    for fid, name, ram, vcpus, disk in DEFAULT_FLAVORS:
        if fid not in known:
            await conn.execute(flavors.insert().values(id=fid, name=name, ram_mb=ram, vcpus=vcpus, disk_gb=disk))
