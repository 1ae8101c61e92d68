from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

from plumbing.db import UtcDateTime
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

# Each instance's fencing epoch (from replication_changed events): the backup command
# carries it, since an agent refuses a command older than the newest epoch it has seen.
epochs = Table(
    "instance_epochs", metadata,
    Column("instance_id", String(64), primary_key=True),
    Column("epoch", BigInteger, nullable=False),
)

# Each instance's agent key (from its registration): data keys travel sealed to it.
agent_keys = Table(
    "agent_keys", metadata,
    Column("instance_id", String(64), primary_key=True),
    Column("public_key", String(100), nullable=False),
)

# The backups: a chain is a full backup and the incremental ones built on it (parent_id).
backups = Table(
    "backups", metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("instance_id", String(36), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("parent_id", String(36), index=True),
    Column("datastore", String(100), nullable=False),
    Column("datastore_version", String(100), nullable=False),
    Column("status", String(16), nullable=False),   # BUILDING, COMPLETED, FAILED, DELETE_FAILED
    Column("message", Text, nullable=False, default=""),
    Column("container", String(255), nullable=False),
    Column("object", String(255), nullable=False),
    Column("wrapped_key", String(200), nullable=False),  # the data key, wrapped by the master key
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("checksum", String(64), nullable=False, default=""),   # SHA-256 of the plain stream
    Column("engine_meta", Text, nullable=False, default="{}"),    # JSON: positions an incremental child needs
    Column("created_at", UtcDateTime(), nullable=False),
    Column("deadline", UtcDateTime()),
)

# Backup strategies (Trove's): the container new backups of a project, or of one of its
# instances, go into. instance_id "" is the project's; an instance's wins over it.
strategies = Table(
    "backup_strategies", metadata,
    Column("project_id", String(64), primary_key=True),
    Column("instance_id", String(36), primary_key=True),
    Column("container", String(255), nullable=False),
)

# Per instance, a cron schedule for full and incremental backups and a retention policy
# (services/backup/schedules.py); next_*_at move forward as the schedule fires.
schedules = Table(
    "backup_schedules", metadata,
    Column("instance_id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("full_cron", String(100), nullable=False),
    Column("incremental_cron", String(100)),
    Column("keep_last_chains", Integer),
    Column("keep_days", Integer),
    Column("next_full_at", UtcDateTime(), nullable=False),
    Column("next_incremental_at", UtcDateTime()),
)

# Restores under way: a new instance being filled from a backup chain by its agent.
restores = Table(
    "restores", metadata,
    Column("instance_id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("backup_id", String(36), nullable=False),
    Column("status", String(16), nullable=False),   # RESTORING, DONE, FAILED
)

# PostgreSQL instances whose WAL is archived (from their first backup on), for
# point-in-time restores: where the segments go, and the key they are sealed under.
archives = Table(
    "wal_archives", metadata,
    Column("instance_id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("container", String(255), nullable=False),
    Column("prefix", String(255), nullable=False),
    Column("wrapped_key", String(200), nullable=False),  # wrapped by the master key
)
