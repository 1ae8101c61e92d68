"""Webhook rules shared by the api (which accepts subscriptions) and the notifier
(which delivers): which targets are allowed, how a delivery is signed, how the
signing secret travels, and the CloudEvents JSON form of an event."""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import socket
from datetime import date, datetime
from urllib.parse import urlsplit

from .envelope import Event
from .secretkeys import secret_box

SIGNATURE_HEADER = "Coffer-Signature"


class TargetRefused(ValueError):
    pass


def _flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def check_target(url: str, resolve=socket.getaddrinfo) -> list[str]:
    """The addresses a webhook URL may be delivered to; raises TargetRefused for a
    malformed URL or one that reaches loopback, private or link-local addresses
    the operator has not allowed (COFFER_WEBHOOKS_ALLOW_LOOPBACK / _ALLOW_PRIVATE)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("The URL must be http:// or https:// with a host.")
    if parts.username or parts.password:
        raise TargetRefused("The URL must not carry credentials; use the subscription's secret.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = resolve(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, ValueError) as exc:
        raise TargetRefused(f"The URL's host cannot be resolved: {exc}")
    addresses = sorted({info[4][0] for info in infos})
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if ip.is_loopback:
            if not _flag("COFFER_WEBHOOKS_ALLOW_LOOPBACK"):
                raise TargetRefused(f"The URL reaches the loopback address {address}, which is not allowed.")
        elif ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
            raise TargetRefused(f"The URL reaches {address}, a link-local or reserved address.")
        elif ip.is_private and not _flag("COFFER_WEBHOOKS_ALLOW_PRIVATE"):
            raise TargetRefused(f"The URL reaches the private address {address}, which is not allowed.")
    return addresses


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: recompute the MAC and reject stale timestamps."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def _box():
    return secret_box("COFFER_WEBHOOK_SECRET_KEY", "webhook-secret.key")


def seal_secret(secret: str) -> str:
    return base64.b64encode(_box().encrypt(secret.encode())).decode()


def open_secret(sealed: str) -> str:
    return _box().decrypt(base64.b64decode(sealed)).decode()


def _json_default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


def cloudevent_json(event: Event) -> bytes:
    """CloudEvents HTTP binding, structured mode."""
    doc = {"specversion": "1.0", "id": event.id, "source": event.source, "type": event.type,
           "subject": event.subject, "time": event.time, "datacontenttype": "application/json",
           "cofferproject": event.project, "data": event.data}
    if event.traceparent:
        doc["traceparent"] = event.traceparent
    return json.dumps(doc, default=_json_default, separators=(",", ":")).encode()
