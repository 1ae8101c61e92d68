"""Topic names. Public topics are the integration surface; the rest are internal."""

INSTANCE_EVENTS = "coffer.instance.events"      # public: instance lifecycle
BACKUP_EVENTS = "coffer.backup.events"          # public
HEALTH_EVENTS = "coffer.health.events"          # public: monitor's health changes
TELEMETRY = "coffer.telemetry"                  # public: agent heartbeats
AUDIT_EVENTS = "coffer.audit.events"            # public: one record per mutating API request

INSTANCE_REQUESTS = "coffer.instance.requests"  # api -> provisioner, scheduler
PLACEMENT_EVENTS = "coffer.placement.events"    # scheduler -> provisioner
DATASTORE_EVENTS = "coffer.datastore.events"    # provisioner -> api: engines the drivers offer
AGENT_COMMANDS = "coffer.agent.commands"        # provisioner -> agent, keyed by instance
AGENT_EVENTS = "coffer.agent.events"            # agent -> provisioner, api
BACKUP_REQUESTS = "coffer.backup.requests"      # api -> backup service
SUBSCRIPTION_EVENTS = "coffer.subscription.events"  # api <-> notifier: webhooks and deliveries
DEAD_LETTER = "coffer.deadletter"               # records no consumer could handle

ALL = [
    INSTANCE_EVENTS, BACKUP_EVENTS, HEALTH_EVENTS, TELEMETRY, AUDIT_EVENTS, INSTANCE_REQUESTS,
    PLACEMENT_EVENTS, DATASTORE_EVENTS, AGENT_COMMANDS, AGENT_EVENTS, BACKUP_REQUESTS, SUBSCRIPTION_EVENTS,
    DEAD_LETTER,
]
