"""The public event types: where each travels and which category a subscriber can
ask for (categories after RDS event subscriptions)."""
from __future__ import annotations

from dataclasses import dataclass

from . import topics as T
from .codec import registry


@dataclass(frozen=True)
class PublicEventType:
    type: str
    topic: str
    category: str
    description: str


PUBLIC_EVENT_TYPES = [
    PublicEventType("coffer.instance.provisioning.v1", T.INSTANCE_EVENTS, "creation",
                    "The instance has a host and an address; its agent is starting."),
    PublicEventType("coffer.instance.active.v1", T.INSTANCE_EVENTS, "creation",
                    "The instance's database is up and accepts connections."),
    PublicEventType("coffer.instance.restarting.v1", T.INSTANCE_EVENTS, "availability",
                    "The platform is restarting the instance's agent and engine."),
    PublicEventType("coffer.instance.action_completed.v1", T.INSTANCE_EVENTS, "configuration",
                    "A day-2 action (restart, resize, configuration, databases, users, ...) finished; "
                    "the instance's status is given."),
    PublicEventType("coffer.instance.action_failed.v1", T.INSTANCE_EVENTS, "failure",
                    "A day-2 action failed; the message says why, the status where it left the instance."),
    PublicEventType("coffer.instance.failed.v1", T.INSTANCE_EVENTS, "failure",
                    "An operation failed; the instance is in ERROR with a fault."),
    PublicEventType("coffer.instance.replication_changed.v1", T.INSTANCE_EVENTS, "replication",
                    "The instance's place in its replica set changed (primary, replica, left it) and the "
                    "set's stable endpoint; one record per member."),
    PublicEventType("coffer.instance.deleted.v1", T.INSTANCE_EVENTS, "deletion",
                    "The instance and its data are gone."),
    PublicEventType("coffer.backup.status_changed.v1", T.BACKUP_EVENTS, "backup",
                    "A backup changed status: NEW, BUILDING, COMPLETED (size, checksum, location), FAILED "
                    "(with the reason), RESTORED (imported) or DELETED."),
    PublicEventType("coffer.backup.restore_finished.v1", T.BACKUP_EVENTS, "backup",
                    "A backup was restored into a new instance, or could not be (the message says why)."),
    PublicEventType("coffer.backup.strategy_changed.v1", T.BACKUP_EVENTS, "backup",
                    "A project's or an instance's backup strategy (the container its new backups go into) was "
                    "set, or removed; keyed by project."),
    PublicEventType("coffer.health.changed.v1", T.HEALTH_EVENTS, "availability",
                    "The monitor's view of the instance's health changed."),
    PublicEventType("coffer.health.alert.v1", T.HEALTH_EVENTS, "availability",
                    "Something about the instance needs attention (its category: replication lag, storage, "
                    "a failover that cannot happen)."),
    PublicEventType("coffer.failover.requested.v1", T.HEALTH_EVENTS, "failover",
                    "The monitor asks for the failover of a primary unhealthy for longer than the delay."),
    PublicEventType("coffer.failover.progressed.v1", T.HEALTH_EVENTS, "failover",
                    "One step of a replica set changing its primary (started, chosen, fenced, promoted, "
                    "endpoint_moved); keyed by the replica set."),
    PublicEventType("coffer.failover.completed.v1", T.HEALTH_EVENTS, "failover",
                    "A replica set has a new primary, reached through its stable endpoint."),
    PublicEventType("coffer.failover.failed.v1", T.HEALTH_EVENTS, "failover",
                    "A replica set could not change its primary; the message says why."),
    PublicEventType("coffer.telemetry.heartbeat.v1", T.TELEMETRY, "telemetry",
                    "The agent's heartbeat with the instance's metrics, every second."),
    PublicEventType("coffer.audit.request.v1", T.AUDIT_EVENTS, "audit",
                    "A mutating API request (who, what, when) and its outcome; keyed by project."),
]
BY_TYPE = {e.type: e for e in PUBLIC_EVENT_TYPES}
# health events name their own: availability, failover, replication, storage
CATEGORIES = sorted({e.category for e in PUBLIC_EVENT_TYPES} | {"failover", "replication", "storage", "backup"})
PUBLIC_TOPICS = sorted({e.topic for e in PUBLIC_EVENT_TYPES} | {T.BACKUP_EVENTS})


def category_of(event_type: str, data: dict) -> str:
    """Health events carry their own category (availability, failover, storage, ...)."""
    if event_type in ("coffer.health.changed.v1", "coffer.health.alert.v1") and data.get("category"):
        return data["category"]
    known = BY_TYPE.get(event_type)
    return known.category if known else "notification"


def describe() -> list[dict]:
    """Each public type with its current Avro schema and fingerprint, and every
    writer schema a record of that type may carry."""
    reg = registry()
    out = []
    for e in PUBLIC_EVENT_TYPES:
        current = reg.current[e.type]
        versions = [{"fingerprint": fp.hex(), "schema": s.raw}
                    for fp, s in reg.writers.items() if s.event_type == e.type]
        out.append({"type": e.type, "topic": e.topic, "category": e.category, "description": e.description,
                    "fingerprint": current.fingerprint.hex(), "schema": current.raw, "versions": versions})
    return out
