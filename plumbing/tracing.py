"""W3C trace context across HTTP and Kafka hops. Spans are made with the
OpenTelemetry SDK; nothing is exported unless an exporter is configured."""
from __future__ import annotations

from contextlib import contextmanager

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .envelope import Event

_propagator = TraceContextTextMapPropagator()


def setup(service: str) -> trace.Tracer:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider(resource=Resource.create({"service.name": service})))
    return trace.get_tracer(service)


def current_traceparent() -> str:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent", "")


def stamp(event: Event) -> Event:
    """Put the current span's context on an event about to be stored or produced."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    if carrier.get("traceparent"):
        event.traceparent = carrier["traceparent"]
        event.tracestate = carrier.get("tracestate", "")
    return event


@contextmanager
def consuming(tracer: trace.Tracer, event: Event, name: str):
    """A consumer span that continues the trace the event carries."""
    carrier = {"traceparent": event.traceparent, "tracestate": event.tracestate}
    ctx = _propagator.extract(carrier) if event.traceparent else None
    token = context.attach(ctx) if ctx is not None else None
    try:
        with tracer.start_as_current_span(name, kind=trace.SpanKind.CONSUMER,
                                          attributes={"messaging.system": "kafka",
                                                      "cloudevents.event_type": event.type,
                                                      "cloudevents.event_subject": event.subject}):
            yield
    finally:
        if token is not None:
            context.detach(token)
