"""Pure health rules: what an instance's heartbeats say about it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    status: str     # HEALTHY, UNHEALTHY, SHUTDOWN
    category: str
    reason: str


def from_heartbeat(engine_up: bool, engine_stopped: bool = False) -> Verdict:
    if engine_up:
        return Verdict("HEALTHY", "availability", "")
    if engine_stopped:  # the stop action: down on purpose, not a failure
        return Verdict(SHUTDOWN, "availability", "the database engine was stopped on purpose")
    return Verdict("UNHEALTHY", "availability", "the database engine is not accepting connections")


def silent(last_seen_ms: int, now_ms: int, window_s: float) -> Verdict | None:
    if now_ms - last_seen_ms > window_s * 1000:
        return Verdict("UNHEALTHY", "availability",
                       f"no heartbeat from the agent for {(now_ms - last_seen_ms) / 1000:.0f} s")
    return None


STARTING = "STARTING"
SHUTDOWN = "SHUTDOWN"


def next_status(previous: str | None, verdict: Verdict) -> str:
    """The status to keep: an engine that has never been up yet is STARTING, not
    UNHEALTHY (its create has a deadline of its own)."""
    if verdict.status == "UNHEALTHY" and previous in (None, STARTING):
        return STARTING
    return verdict.status


def worth_announcing(previous: str | None, kept: str, restarted: bool, was_silent: bool) -> bool:
    if kept == STARTING:
        return False
    return previous is None or restarted or was_silent or previous != kept
