"""Pure delivery rules: which subscriptions an event goes to, and when to retry."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

MAX_ATTEMPTS = int(os.environ.get("COFFER_WEBHOOK_MAX_ATTEMPTS", "8"))
RETRY_BASE_SECONDS = float(os.environ.get("COFFER_WEBHOOK_RETRY_BASE_SECONDS", "1"))
RETRY_CAP_SECONDS = float(os.environ.get("COFFER_WEBHOOK_RETRY_CAP_SECONDS", "300"))


@dataclass(frozen=True)
class Subscription:
    id: str
    project_id: str
    event_types: tuple[str, ...]
    categories: tuple[str, ...]
    resource_ids: tuple[str, ...]
    enabled: bool


def matches(sub: Subscription, project: str, event_type: str, category: str, resource_id: str) -> bool:
    """A tenant only ever receives its own project's events; empty filters match all."""
    return (sub.enabled and bool(project) and sub.project_id == project
            and (not sub.event_types or event_type in sub.event_types)
            and (not sub.categories or category in sub.categories)
            and (not sub.resource_ids or resource_id in sub.resource_ids))


def retry_delay(attempt: int, rand: random.Random = random._inst) -> float:  # type: ignore[attr-defined]
    """Exponential backoff with jitter after failed attempt `attempt` (1-based):
    base * 2^(attempt-1), capped, then a random half to full of it."""
    delay = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return delay * rand.uniform(0.5, 1.0)


def outcome(attempt: int, ok: bool) -> str:
    if ok:
        return "delivered"
    return "dead" if attempt >= MAX_ATTEMPTS else "retrying"
