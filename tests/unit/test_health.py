"""The monitor's health rules."""
from services.monitor import health

UP, DOWN = health.from_heartbeat(True), health.from_heartbeat(False)


def test_an_engine_still_booting_is_starting_and_not_announced():
    kept = health.next_status(None, DOWN)
    assert kept == health.STARTING
    assert not health.worth_announcing(None, kept, restarted=False, was_silent=False)
    assert health.next_status(health.STARTING, DOWN) == health.STARTING


def test_first_healthy_and_every_change_after_it_are_announced():
    assert health.worth_announcing(health.STARTING, health.next_status(health.STARTING, UP), False, False)
    assert health.worth_announcing("HEALTHY", health.next_status("HEALTHY", DOWN), False, False)
    assert not health.worth_announcing("HEALTHY", health.next_status("HEALTHY", UP), False, False)


def test_restarts_and_silence_are_announced_even_without_a_change():
    assert health.worth_announcing("HEALTHY", "HEALTHY", restarted=True, was_silent=False)
    assert health.worth_announcing("HEALTHY", "HEALTHY", restarted=False, was_silent=True)


def test_silence_window():
    assert health.silent(last_seen_ms=0, now_ms=6_000, window_s=5).status == "UNHEALTHY"
    assert health.silent(last_seen_ms=0, now_ms=4_000, window_s=5) is None


PRIMARY = {"status": "HEALTHY", "last_seen": 10_000, "role": "primary", "replicas": 1, "failover_enabled": True,
           "epoch": 1}


def test_a_primary_down_longer_than_the_delay_is_failed_over():
    down = {**PRIMARY, "unhealthy_since": 10_000}
    assert health.failover_decision(down, 10_500, silence_s=5, delay_s=1) is None
    assert health.failover_decision(down, 11_100, silence_s=5, delay_s=1).action == "failover"


def test_a_silent_primary_counts_from_the_end_of_the_silence_window():
    assert health.failover_decision(PRIMARY, 15_500, silence_s=5, delay_s=1) is None
    assert health.failover_decision(PRIMARY, 16_100, silence_s=5, delay_s=1).action == "failover"


def test_no_failover_without_replicas_for_a_replica_or_when_it_is_off():
    down = {**PRIMARY, "unhealthy_since": 0}
    assert health.failover_decision({**down, "replicas": 0}, 60_000, 5, 1) is None
    assert health.failover_decision({**down, "role": "replica"}, 60_000, 5, 1) is None
    decision = health.failover_decision({**down, "failover_enabled": False}, 60_000, 5, 1)
    assert decision.action == "alert" and "off" in decision.reason


def test_lag_and_disk_alerts():
    assert health.threshold_alerts({"role": "replica", "replication_lag_seconds": 12}, 10, 0.9)[0][0] == "replication"
    assert health.threshold_alerts({"role": "primary", "disk_used_bytes": 95, "disk_total_bytes": 100}, 10, 0.9) \
        == [("storage", "the volume is 95% full")]
    assert health.threshold_alerts({"role": "replica", "replication_lag_seconds": 1, "disk_used_bytes": 1,
                                    "disk_total_bytes": 100}, 10, 0.9) == []


def test_an_engine_stopped_on_purpose_is_shutdown_not_unhealthy():
    stopped = health.from_heartbeat(False, engine_stopped=True)
    assert stopped.status == health.SHUTDOWN
    kept = health.next_status("HEALTHY", stopped)
    assert kept == health.SHUTDOWN and health.worth_announcing("HEALTHY", kept, False, False)
    # started again: healthy is announced
    assert health.worth_announcing(kept, health.next_status(kept, UP), False, False)
