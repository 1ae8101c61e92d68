"""W3C trace context across HTTP and Kafka hops. Spans are made with the
OpenTelemetry SDK; nothing is exported unless an exporter is configured:
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns on
OTLP/HTTP export through a BatchSpanProcessor; without it no processor and no
exporter exist. The other OTEL_* variables of the SDK and exporter apply
(OTEL_BSP_SCHEDULE_DELAY, OTEL_EXPORTER_OTLP_HEADERS, OTEL_TRACES_EXPORTER=none, ...).

Spans of a record's journey: the emitting handler's unit of work (a CLIENT span
around its transaction), a PRODUCER span when the record is actually sent (its
context is what the record's `traceparent` header carries), and a CONSUMER span
per handling, whose parent is that producer span."""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .envelope import Event

_propagator = TraceContextTextMapPropagator()
logger = logging.getLogger("coffer.tracing")


def exporter_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
                or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip())


def setup(service: str, instance: str | None = None) -> trace.Tracer:
    """Install this process's TracerProvider (once). Call it in the process that
    makes the spans, after any fork: the batch processor runs a thread."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        attributes = {"service.name": service, "service.namespace": "coffer"}
        if instance:
            attributes["service.instance.id"] = instance
        provider = TracerProvider(resource=Resource.create(attributes))
        if exporter_configured():
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    return trace.get_tracer(service)


def tracer(name: str = "coffer") -> trace.Tracer:
    """A tracer usable before `setup` (it follows the provider once installed)."""
    return trace.get_tracer(name)


def flush(timeout_millis: int = 5000) -> None:
    """Export the spans still buffered: at a service's stop, and in an agent, which
    leaves by os._exit (no atexit hooks run there)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        try:
            provider.force_flush(timeout_millis)
        except Exception as exc:  # never let telemetry stop a shutdown
            logger.warning("tracing flush failed: %r", exc)


def _current_carrier() -> dict[str, str]:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def current_traceparent() -> str:
    return _current_carrier().get("traceparent", "")


def stamp(event: Event) -> Event:
    """Put the current span's context on an event about to be stored or produced."""
    carrier = _current_carrier()
    if carrier.get("traceparent"):
        event.traceparent = carrier["traceparent"]
        event.tracestate = carrier.get("tracestate", "")
    return event


def _extract(traceparent: str, tracestate: str = "") -> context.Context | None:
    if not traceparent:
        return None
    return _propagator.extract({"traceparent": traceparent, "tracestate": tracestate})


def incoming(headers) -> context.Context | None:
    """The context an HTTP request's `traceparent` header carries, if any."""
    return _extract(headers.get("traceparent", ""), headers.get("tracestate", ""))


def parent_for(traceparent: str, tracestate: str = "") -> context.Context | None:
    """The parent of a span about a record carrying `traceparent`: the current span
    when it belongs to the same trace (it is closer), else the carried context,
    else the current context."""
    carried = _extract(traceparent, tracestate)
    if carried is None:
        return None  # the current context
    current = trace.get_current_span().get_span_context()
    carried_span = trace.get_current_span(carried).get_span_context()
    if current.is_valid and (not carried_span.is_valid or current.trace_id == carried_span.trace_id):
        return None
    return carried


def start_producer_span(topic: str, event_type: str, traceparent: str = "", tracestate: str = "",
                        attributes: dict | None = None) -> trace.Span:
    """A PRODUCER span for one record about to be sent (not made current); put its
    context on the record with `headers_for` or `inject_into`."""
    attrs = {"messaging.system": "kafka", "messaging.operation.type": "send",
             "messaging.destination.name": topic, "cloudevents.event_type": event_type}
    attrs.update({k: v for k, v in (attributes or {}).items() if v is not None and v != ""})
    return tracer("coffer.bus").start_span(f"send {topic}", context=parent_for(traceparent, tracestate),
                                           kind=trace.SpanKind.PRODUCER, attributes=attrs)


def carrier_of(span: trace.Span) -> dict[str, str]:
    """traceparent/tracestate for `span` (empty when tracing is off)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def inject_into(span: trace.Span, event: Event) -> Event:
    carrier = carrier_of(span)
    if carrier.get("traceparent"):
        event.traceparent = carrier["traceparent"]
        event.tracestate = carrier.get("tracestate", "")
    return event


def with_trace_headers(span: trace.Span, headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Record headers with traceparent/tracestate replaced by `span`'s context."""
    carrier = carrier_of(span)
    if not carrier.get("traceparent"):
        return headers
    kept = [(k, v) for k, v in headers if k not in ("traceparent", "tracestate")]
    return kept + [(k, v.encode()) for k, v in carrier.items() if v]


def end_span(span: trace.Span, error: BaseException | None = None) -> None:
    if error is not None:
        span.record_exception(error)
        span.set_status(trace.Status(trace.StatusCode.ERROR, repr(error)))
    span.end()


@contextmanager
def consuming(tracer: trace.Tracer, event: Event, name: str, attributes: dict | None = None):
    """A consumer span that continues the trace the event carries: its parent is the
    producer span whose context the record carries."""
    ctx = _extract(event.traceparent, event.tracestate)
    token = context.attach(ctx) if ctx is not None else None
    attrs = {"messaging.system": "kafka", "messaging.operation.type": "process",
             "cloudevents.event_type": event.type, "cloudevents.event_subject": event.subject,
             "cloudevents.event_id": event.id}
    attrs.update({k: v for k, v in (attributes or {}).items() if v is not None and v != ""})
    try:
        with tracer.start_as_current_span(name, kind=trace.SpanKind.CONSUMER, attributes=attrs) as span:
            yield span
    finally:
        if token is not None:
            context.detach(token)
