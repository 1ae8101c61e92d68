from sqlalchemy import Boolean, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text

from plumbing.db import UtcDateTime
from plumbing.outbox import add_tables

metadata = MetaData()
add_tables(metadata)

# The subscriptions the api announced (the notifier's own copy).
subscriptions = Table(
    "subscriptions", metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("event_types", Text, nullable=False),   # JSON lists
    Column("categories", Text, nullable=False),
    Column("resource_ids", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("sealed_secret", Text, nullable=False),
)

deliveries = Table(
    "deliveries", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # arrival order
    Column("id", String(36), nullable=False, unique=True),
    Column("subscription_id", String(36), nullable=False, index=True),
    Column("resource_id", String(200), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("body", LargeBinary, nullable=False),   # the CloudEvent JSON, as delivered
    Column("status", String(16), nullable=False),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", Text, nullable=False, default=""),
    Index("deliveries_pending", "status", "seq"),
)
