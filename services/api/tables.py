from sqlalchemy import BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text, UniqueConstraint, text

from plumbing.db import UtcDateTime
from plumbing.outbox import add_tables

metadata = MetaData()
add_tables(metadata)

projects = Table(
    "projects", metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

tokens = Table(
    "tokens", metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256; the token itself is never stored
    Column("project_id", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

flavors = Table(
    "flavors", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("ram_mb", Integer, nullable=False),
    Column("vcpus", Integer, nullable=False),
    Column("disk_gb", Integer, nullable=False),
)

datastores = Table(
    "datastores", metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("default_version_id", String(36)),
    # an administrator picked the default (even none): the drivers' offers leave it alone
    Column("default_chosen", Boolean),
)

datastore_versions = Table(
    "datastore_versions", metadata,
    Column("id", String(36), primary_key=True),
    Column("datastore_id", String(36), nullable=False),
    Column("name", String(100), nullable=False),
    Column("version", String(100), nullable=False),
    Column("manager", String(100), nullable=False),
    # an administrator's switch (mgmt datastore-versions): inactive ones are hidden from tenants
    Column("active", Boolean, nullable=False, server_default=text("true")),
    # whether a compute driver announced it runs the version (installed binaries, an image): one only
    # registered by an administrator takes no instances until a driver does
    Column("offered", Boolean, nullable=False, server_default=text("true")),
    # what an administrator registered with it, shown back as Trove does (image_tags comma-separated)
    Column("image", String(255), nullable=False, server_default=text("''")),
    Column("image_tags", Text, nullable=False, server_default=text("''")),
    Column("packages", Text, nullable=False, server_default=text("''")),
    UniqueConstraint("datastore_id", "name"),
)

# An administrator's changes to a version's configuration parameter rules (mgmt parameters): a
# rule added or replaced (`rule`, the JSON of parameters/*.json entries), or removed (`rule` null).
parameter_changes = Table(
    "parameter_changes", metadata,
    Column("version_id", String(36), primary_key=True),
    Column("name", String(255), primary_key=True),  # lower case: parameter names are case-insensitive
    Column("rule", Text),
)

instances = Table(
    "instances", metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("operating_status", String(32), nullable=False, default=""),
    # when what operating_status says was observed: an older report never overwrites a newer one
    Column("health_at", UtcDateTime()),
    Column("flavor_id", String(64), nullable=False),
    Column("volume_gb", Integer, nullable=False),
    Column("datastore", String(100), nullable=False),
    Column("datastore_version", String(100), nullable=False),
    Column("datastore_version_number", String(100), nullable=False),
    Column("address", String(64)),
    Column("host", String(100)),
    Column("zone", String(100)),
    # the exclusive action running on it (restart, resize, delete, ...), None when idle
    Column("task", String(32)),
    # the agent's public key: secrets for it (passwords) are sealed to it
    Column("agent_public_key", String(100)),
    Column("fault_message", Text),
    Column("fault_details", Text),
    Column("fault_at", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("configuration_id", String(36)),  # the attached configuration group, if any
    Column("replica_of_id", String(36), index=True),  # a replica: its primary
    Column("hostname", String(255)),  # a replica set's stable endpoint, reaching its current primary
    Column("failover_enabled", Boolean, nullable=False, default=True),
    Column("synchronous", Boolean, nullable=False, default=False),  # its replica set acknowledges on a replica
    Column("volume_used_bytes", BigInteger),  # from the agent's heartbeats (services/api/agent_telemetry.py)
    # access.py: Trove's access {is_public, allowed_cidrs} as JSON (None: never set), and
    # where the provisioner exposes a public instance (its port only when not the engine's)
    Column("access", Text),
    Column("public_address", String(64)),
    Column("public_port", Integer),
)

# When each instance's agent was last heard from, and its engine's process figures then
# (agent_telemetry.py): apart from `instances`, so a heartbeat's write does not touch the
# rows whose changes every API process's cached instance views are forgotten on.
guest_heartbeats = Table(
    "guest_heartbeats", metadata,
    Column("instance_id", String(36), primary_key=True),
    Column("heartbeat_at", UtcDateTime(), nullable=False),
    Column("figures", Text, nullable=False),
)

# Configuration groups: values for the parameters of one datastore version.
configurations = Table(
    "configurations", metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("datastore_version_id", String(36), nullable=False),
    Column("values", Text, nullable=False),  # JSON object, each value in its parameter's type
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Day-2 actions requested on instances: one row each, from request to outcome.
operations = Table(
    "operations", metadata,
    Column("id", String(36), primary_key=True),
    Column("instance_id", String(36), nullable=False, index=True),
    Column("project_id", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("arguments", Text, nullable=False),   # JSON, never a secret
    Column("exclusive", Boolean, nullable=False),
    Column("state", String(16), nullable=False),  # running, done, failed
    Column("status_before", String(32), nullable=False),  # the instance's, restored when it fails harmlessly
    Column("message", Text, nullable=False, default=""),
    Column("output", Text, nullable=False, default="{}"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
)

# Passwords from a create request wait here, encrypted at rest, until the
# instance's agent publishes the key to seal them to; then they are deleted.
pending_credentials = Table(
    "pending_credentials", metadata,
    Column("instance_id", String(36), primary_key=True),
    Column("box", Text, nullable=False),
)

# Webhook subscriptions (the notifier delivers; it learns them from events).
subscriptions = Table(
    "subscriptions", metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("event_types", Text, nullable=False),   # JSON list
    Column("categories", Text, nullable=False),    # JSON list
    Column("resource_ids", Text, nullable=False),  # JSON list
    Column("enabled", Integer, nullable=False),
    Column("sealed_secret", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# The latest state of each delivery, from the notifier's delivery events.
deliveries = Table(
    "deliveries", metadata,
    Column("id", String(36), primary_key=True),
    Column("subscription_id", String(36), nullable=False, index=True),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("resource_id", String(200), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", Text, nullable=False, default=""),
    Column("next_attempt_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Per-project quota limits set by an admin; absent rows take the defaults.
quotas = Table(
    "quotas", metadata,
    Column("project_id", String(64), primary_key=True),
    Column("resource", String(32), primary_key=True),
    Column("hard_limit", Integer, nullable=False),
)

# Each instance's databases, users (with their grants) and root as Coffer made them:
# the API lists from here, never from the engine (services/api/accounts_view.py).
instance_databases = Table(
    "instance_databases", metadata,
    Column("instance_id", String(36), primary_key=True),
    Column("name", String(100), primary_key=True),
)

instance_users = Table(
    "instance_users", metadata,
    Column("instance_id", String(36), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("host", String(255), primary_key=True),  # "%" where the datastore has no hosts
)

user_grants = Table(
    "user_grants", metadata,
    Column("instance_id", String(36), primary_key=True),
    Column("user_name", String(100), primary_key=True),
    Column("user_host", String(255), primary_key=True),
    Column("database", String(100), primary_key=True),
)

instance_root = Table(
    "instance_root", metadata,
    Column("instance_id", String(36), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("changed_at", UtcDateTime(), nullable=False),
)

# Who first enabled root on an instance, and when (Trove's root history, the mgmt view:
# a root login means the tenant may have changed anything).
root_history = Table(
    "root_history", metadata,
    Column("instance_id", String(36), primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("enabled_at", UtcDateTime(), nullable=False),
)

# The databases and users of a create request (JSON, no passwords) until the
# instance is ACTIVE: only then do they exist.
requested_accounts = Table(
    "requested_accounts", metadata,
    Column("instance_id", String(36), primary_key=True),
    Column("databases", Text, nullable=False),
    Column("users", Text, nullable=False),
)

# The backups, as the backup service's events describe them (services/api/backups.py).
backups = Table(
    "backups", metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("instance_id", String(36), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("parent_id", String(36)),
    Column("datastore", String(100), nullable=False),
    Column("datastore_version", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("checksum", String(64), nullable=False, default=""),
    Column("location", Text, nullable=False, default=""),
    # the instance's status when its backup started: shown again once the backup ends
    Column("instance_status_before", String(32), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# The API's view of the backup strategies (the backup service owns them), projected
# from coffer.backup.strategy_changed.v1; instance_id "" is the project's strategy.
backup_strategies = Table(
    "backup_strategies", metadata,
    Column("project_id", String(64), primary_key=True),
    Column("instance_id", String(36), primary_key=True),
    Column("backend", String(16), nullable=False),
    Column("container", String(255), nullable=False),
)

# Schedules that stop or start an instance by cron (services/api/schedules.py).
instance_schedules = Table(
    "instance_schedules", metadata,
    Column("id", String(36), primary_key=True),
    Column("instance_id", String(36), nullable=False, index=True),
    Column("project_id", String(64), nullable=False),
    Column("action", String(16), nullable=False),    # stop, start
    Column("cron", String(200), nullable=False),     # five fields, or six with seconds first; UTC
    Column("next_run_at", UtcDateTime(), nullable=False, index=True),
    Column("last_run_at", UtcDateTime()),
    Column("last_result", Text, nullable=False, default=""),  # "started", or why the firing was skipped
    Column("created_at", UtcDateTime(), nullable=False),
)

# Coffer's extension: each instance's backup schedule and retention policy, as asked and then
# as the backup service applies it (services/api/backup_schedules.py).
backup_schedules = Table(
    "backup_schedules", metadata,
    Column("instance_id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("full_cron", String(100), nullable=False),
    Column("incremental_cron", String(100)),
    Column("keep_last_chains", Integer),
    Column("keep_days", Integer),
    Column("next_full_at", UtcDateTime(), nullable=False),
    Column("next_incremental_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False),
)
