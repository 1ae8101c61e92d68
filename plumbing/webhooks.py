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

import nacl.secret
import nacl.utils

from .config import coffer_home
from .envelope import Event

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


def _secret_key() -> bytes:
    configured = os.environ.get("COFFER_WEBHOOK_SECRET_KEY")
    if configured:
        return base64.b64decode(configured)
    path = coffer_home() / "webhook-secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE))
        except FileExistsError:
            pass  # the other service made it first
    return path.read_bytes()


def seal_secret(secret: str) -> str:
    return base64.b64encode(nacl.secret.SecretBox(_secret_key()).encrypt(secret.encode())).decode()


def open_secret(sealed: str) -> str:
    return nacl.secret.SecretBox(_secret_key()).decrypt(base64.b64decode(sealed)).decode()


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
