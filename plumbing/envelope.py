"""CloudEvents Kafka binding, binary mode: the event's attributes travel as headers,
its data as the Avro record value."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Event:
    type: str                      # e.g. coffer.instance.active.v1
    subject: str                   # the aggregate id; also the record key
    data: dict
    source: str = ""
    project: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: str = field(default_factory=lambda: utcnow().isoformat())
    correlation: str = ""
    causation: str = ""
    traceparent: str = ""
    tracestate: str = ""

    def caused(self, type: str, data: dict, subject: str | None = None, source: str = "") -> "Event":
        """A new event in the same correlation (and trace) as this one."""
        return Event(type=type, subject=subject or self.subject, data=data, source=source,
                     project=self.project, correlation=self.correlation or self.id,
                     causation=self.id, traceparent=self.traceparent, tracestate=self.tracestate)

    def headers(self) -> list[tuple[str, bytes]]:
        pairs = {
            "ce_specversion": "1.0", "ce_id": self.id, "ce_type": self.type,
            "ce_source": self.source, "ce_time": self.time, "ce_subject": self.subject,
            "content-type": "application/avro", "coffer_project": self.project,
            "coffer_correlation": self.correlation or self.id, "coffer_causation": self.causation,
            "traceparent": self.traceparent, "tracestate": self.tracestate,
        }
        return [(k, v.encode()) for k, v in pairs.items() if v]

    @classmethod
    def from_headers(cls, headers, data: dict) -> "Event":
        h = {k: v.decode() for k, v in headers or ()}
        return cls(type=h.get("ce_type", ""), subject=h.get("ce_subject", ""), data=data,
                   source=h.get("ce_source", ""), project=h.get("coffer_project", ""),
                   id=h.get("ce_id", ""), time=h.get("ce_time", ""),
                   correlation=h.get("coffer_correlation", ""), causation=h.get("coffer_causation", ""),
                   traceparent=h.get("traceparent", ""), tracestate=h.get("tracestate", ""))


def header(headers, name: str) -> str:
    for k, v in headers or ():
        if k == name:
            return v.decode(errors="replace")
    return ""
