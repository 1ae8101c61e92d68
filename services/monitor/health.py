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


# -- failover and alerts: pure decisions over one instance's kept state ------------------
# state keys: status, last_seen (ms), unhealthy_since (ms, engine down), role, replicas (count),
# failover_enabled, epoch

def unhealthy_since(state: dict, now_ms: int, silence_s: float) -> int | None:
    """Since when the instance is known unhealthy: its engine down, or its agent silent
    (counted from the end of the silence window)."""
    if state.get("unhealthy_since"):
        return state["unhealthy_since"]
    if now_ms - state.get("last_seen", now_ms) > silence_s * 1000:
        return state["last_seen"] + int(silence_s * 1000)
    return None


@dataclass(frozen=True)
class FailoverDecision:
    action: str      # "failover" (ask the provisioner) or "alert" (it cannot or may not happen)
    reason: str


def failover_decision(state: dict, now_ms: int, silence_s: float, delay_s: float) -> FailoverDecision | None:
    """A primary with replicas, unhealthy for longer than the delay, is failed over
    when its set allows it; otherwise an alert says why it is not."""
    if state.get("role") != "primary" or not state.get("replicas"):
        return None
    since = unhealthy_since(state, now_ms, silence_s)
    if since is None or now_ms - since < delay_s * 1000:
        return None
    down_for = (now_ms - since) / 1000
    if not state.get("failover_enabled", True):
        return FailoverDecision("alert", f"the primary has been unhealthy for {down_for:.1f} s and automatic "
                                         "failover is off for its replica set")
    return FailoverDecision("failover", f"the primary has been unhealthy for {down_for:.1f} s")


def threshold_alerts(heartbeat: dict, lag_threshold_s: float, disk_share: float) -> list[tuple[str, str]]:
    """(category, message) for what a heartbeat shows above its threshold."""
    alerts = []
    if heartbeat.get("role") == "replica" and heartbeat.get("replication_lag_seconds", 0) > lag_threshold_s:
        alerts.append(("replication", f"the replica is {heartbeat['replication_lag_seconds']:.1f} s behind its "
                                      f"primary (threshold {lag_threshold_s:.0f} s)"))
    total = heartbeat.get("disk_total_bytes") or 0
    if total and heartbeat.get("disk_used_bytes", 0) / total > disk_share:
        alerts.append(("storage", f"the volume is {100 * heartbeat['disk_used_bytes'] / total:.0f}% full"))
    return alerts
