"""Metrics through OpenTelemetry, scraped by Prometheus from a small HTTP endpoint
of each service process.

Nothing is collected and no endpoint exists unless a port is configured:

  COFFER_<SERVICE>_METRICS_PORT   this service's port (e.g. COFFER_API_METRICS_PORT);
                                  0 turns its endpoint off
  COFFER_METRICS_PORT             a base port: api on it, then scheduler +1,
                                  provisioner +2, backup +3, monitor +4, notifier +5
  COFFER_METRICS_HOST             address the endpoints bind (default 127.0.0.1)

The instruments below are created at import through the OpenTelemetry API; until
`setup` installs a MeterProvider they are no-ops that cost a function call."""
from __future__ import annotations

import logging
import os

from opentelemetry import metrics

from .logs import log

logger = logging.getLogger("coffer.metrics")

# offsets from COFFER_METRICS_PORT, so one base port serves a whole host
PORT_OFFSETS = {"api": 0, "scheduler": 1, "provisioner": 2, "backup": 3, "monitor": 4, "notifier": 5}

SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SAGA_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

_meter = metrics.get_meter("coffer")

records_consumed = _meter.create_counter(
    "coffer.records.consumed", unit="{record}",
    description="Records a consumer group fetched, by topic, event type and outcome "
                "(handled, skipped, dead_lettered)")
records_produced = _meter.create_counter(
    "coffer.records.produced", unit="{record}",
    description="Records sent to the broker and acknowledged, by topic and event type")
consumer_lag = _meter.create_gauge(
    "coffer.consumer.lag", unit="{record}",
    description="Records behind the partition's high watermark, per group and partition")
handler_duration = _meter.create_histogram(
    "coffer.handler.duration", unit="s",
    description="Time one handler attempt took for one consumed event",
    explicit_bucket_boundaries_advisory=SECONDS_BUCKETS)
outbox_depth = _meter.create_gauge(
    "coffer.outbox.depth", unit="{record}", description="Outbox rows waiting for the relay")
http_server_duration = _meter.create_histogram(
    "coffer.http.server.duration", unit="s", description="API request duration",
    explicit_bucket_boundaries_advisory=SECONDS_BUCKETS)
saga_duration = _meter.create_histogram(
    "coffer.saga.duration", unit="s",
    description="Time from a saga's start to its end, by saga and outcome",
    explicit_bucket_boundaries_advisory=SAGA_BUCKETS)
webhook_deliveries = _meter.create_counter(
    "coffer.webhook.deliveries", unit="{delivery}",
    description="Webhook delivery attempts by outcome")
agent_command_duration = _meter.create_histogram(
    "coffer.agent.command.duration", unit="s",
    description="Time an agent took to carry out a command, by command and outcome",
    explicit_bucket_boundaries_advisory=SAGA_BUCKETS)

_enabled = False
_port: int | None = None


def configured_port(service: str) -> int | None:
    """The port this service's endpoint should listen on, or None for no endpoint."""
    explicit = os.environ.get(f"COFFER_{service.upper()}_METRICS_PORT", "").strip()
    if explicit:
        return int(explicit) or None
    base = os.environ.get("COFFER_METRICS_PORT", "").strip()
    if base and int(base) and service in PORT_OFFSETS:
        return int(base) + PORT_OFFSETS[service]
    return None


def setup(service: str) -> int | None:
    """Install the MeterProvider and start the scrape endpoint when a port is
    configured; returns the port or None. Call once per process."""
    global _enabled, _port
    if _enabled:
        return _port
    port = configured_port(service)
    if port is None:
        return None
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from prometheus_client import start_http_server

    host = os.environ.get("COFFER_METRICS_HOST", "127.0.0.1")
    reader = PrometheusMetricReader()
    try:
        start_http_server(port, addr=host)
    except OSError as exc:  # metrics are not worth a service that does not start
        reader.shutdown()
        log(logger, logging.ERROR, "metrics endpoint not started", host=host, port=port, error=str(exc))
        return None
    metrics.set_meter_provider(MeterProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "coffer"}),
        metric_readers=[reader]))
    _enabled, _port = True, port
    log(logger, logging.INFO, "metrics endpoint", url=f"http://{host}:{port}/metrics")
    return port


def enabled() -> bool:
    """True once metrics are collected: gate measurements that cost a query."""
    return _enabled


# -- helpers for other services' code --------------------------------------
def saga_finished(saga: str, outcome: str, seconds: float) -> None:
    """A saga ended: `saga` e.g. "create" or "delete", `outcome` e.g. "done",
    "failed" or "timed_out", `seconds` from its start to its end."""
    saga_duration.record(max(seconds, 0.0), {"saga": saga, "outcome": outcome})


def webhook_delivered(outcome: str, event_type: str = "") -> None:
    """One webhook delivery attempt: `outcome` e.g. "delivered", "failed",
    "timeout", "gave_up"."""
    attributes = {"outcome": outcome}
    if event_type:
        attributes["event_type"] = event_type
    webhook_deliveries.add(1, attributes)


def consumed(topic: str, event_type: str, group: str, outcome: str = "handled") -> None:
    records_consumed.add(1, {"topic": topic, "event_type": event_type or "unknown", "group": group,
                             "outcome": outcome})


def produced(topic: str, event_type: str, count: int = 1) -> None:
    records_produced.add(count, {"topic": topic, "event_type": event_type or "unknown"})
