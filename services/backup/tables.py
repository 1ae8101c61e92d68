from sqlalchemy import Column, MetaData, String, Table

from plumbing.outbox import add_tables

metadata = MetaData()
add_tables(metadata)

# Instances that exist and could be backed up, from the public instance events.
backupable = Table(
    "backupable_instances", metadata,
    Column("instance_id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("address", String(64), nullable=False),
)
