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


def test_an_engine_stopped_on_purpose_is_shutdown_not_unhealthy():
    stopped = health.from_heartbeat(False, engine_stopped=True)
    assert stopped.status == health.SHUTDOWN
    kept = health.next_status("HEALTHY", stopped)
    assert kept == health.SHUTDOWN and health.worth_announcing("HEALTHY", kept, False, False)
    # started again: healthy is announced
    assert health.worth_announcing(kept, health.next_status(kept, UP), False, False)
