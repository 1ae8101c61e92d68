from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text

from plumbing.db import UtcDateTime
from plumbing.outbox import add_tables

metadata = MetaData()
add_tables(metadata)

# The compute side of an instance: where it runs and how to reach its agent.
instances = Table(
    "instances", metadata,
    Column("instance_id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("spec", Text, nullable=False),            # the create request (no secrets)
    Column("host", String(100)),
    Column("zone", String(100)),
    Column("address", String(64), unique=True),
    Column("port", Integer),
    Column("agent_public_key", String(100)),
    Column("epoch", Integer, nullable=False, default=1),
    Column("status", String(32), nullable=False),   # BUILD, ACTIVE, ERROR, FENCED
    Column("replica_of", String(64)),                # the source it replicates from; None for a primary
)

# A primary and its replicas: the epoch every command to them carries (a failover
# raises it, so an old primary's agent refuses whatever an older decision sent),
# and the stable endpoint that always reaches the current primary.
replica_sets = Table(
    "replica_sets", metadata,
    Column("id", String(64), primary_key=True),      # the first primary's id
    Column("primary_id", String(64), nullable=False, unique=True),
    Column("epoch", Integer, nullable=False),
    Column("endpoint_address", String(64), unique=True),
    Column("port", Integer, nullable=False),
    Column("failover_enabled", Boolean, nullable=False, default=True),
    Column("synchronous", Boolean, nullable=False, default=False),
)

# Saga state, one row per running or finished operation.
operations = Table(
    "operations", metadata,
    Column("op_id", String(100), primary_key=True),
    Column("instance_id", String(64), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("step", String(32), nullable=False),
    Column("deadline", UtcDateTime(), nullable=False),
    Column("data", Text, nullable=False, default="{}"),
    Column("finished", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False, default=0),  # optimistic concurrency
)
