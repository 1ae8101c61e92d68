from sqlalchemy import Column, Integer, MetaData, String, Table

from plumbing.outbox import add_tables

metadata = MetaData()
add_tables(metadata)

hosts = Table(
    "hosts", metadata,
    Column("name", String(100), primary_key=True),
    Column("zone", String(100), nullable=False),
    Column("vcpus", Integer, nullable=False),
    Column("ram_mb", Integer, nullable=False),
    Column("disk_gb", Integer, nullable=False),
    Column("used_vcpus", Integer, nullable=False, default=0),
    Column("used_ram_mb", Integer, nullable=False, default=0),
    Column("used_disk_gb", Integer, nullable=False, default=0),
    Column("datastores", String(500), nullable=False, default=""),
    # optimistic concurrency: a claim only lands on the generation it read
    Column("generation", Integer, nullable=False, default=0),
)

claims = Table(
    "claims", metadata,
    Column("instance_id", String(64), primary_key=True),
    Column("host", String(100), nullable=False),
    Column("vcpus", Integer, nullable=False),
    Column("ram_mb", Integer, nullable=False),
    Column("disk_gb", Integer, nullable=False),
    # the primary a replica copies: the replica keeps off the hosts of its replica set
    Column("replica_of", String(64)),
)
