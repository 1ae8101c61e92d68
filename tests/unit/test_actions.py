"""services/provisioner/actions.py: day-2 actions as a pure state machine."""
from __future__ import annotations

from datetime import datetime, timezone

from services.provisioner import actions
from services.provisioner.actions import ActionSaga, Plan, Step


def take(saga: ActionSaga) -> list[str]:
    effects = list(saga.effects)
    saga.effects.clear()
    return effects


def report(saga: ActionSaga, success=True, error="", running=True, pending=False, output=None, command_id=None):
    saga.agent_reported(command_id or saga.command_id, success, error, running, pending, output or {})


def test_a_guest_action_is_one_agent_step_named_after_it():
    saga = ActionSaga.begin("op-1", "create_databases", {"databases": [{"name": "a"}]}, None, 0.0)
    assert take(saga) == ["send"]
    assert saga.step == Step("agent", "create_databases", {"databases": [{"name": "a"}]})
    assert saga.command_id == "op-1:0" and not saga.disruptive
    report(saga, output={"created": ["a"]})
    assert take(saga) == ["completed"]
    assert (saga.outcome, saga.status, saga.output) == ("done", "ACTIVE", {"created": ["a"]})


def test_the_agents_report_decides_the_instance_status():
    assert actions.instance_status(engine_running=True, restart_pending=False, succeeded=True) == "ACTIVE"
    assert actions.instance_status(True, True, True) == "RESTART_REQUIRED"
    assert actions.instance_status(False, False, True) == "SHUTDOWN"  # stopped on purpose
    assert actions.instance_status(False, False, False) == "ERROR"    # a failure that left it down
    assert actions.instance_status(True, False, False) == "ACTIVE"    # a failure that changed nothing


def test_a_failed_step_fails_the_action_with_the_agents_error():
    saga = ActionSaga.begin("op-1", "restart", {}, None, 0.0)
    take(saga)
    report(saga, success=False, error="PostgreSQL did not become ready", running=False)
    assert take(saga) == ["failed"]
    assert saga.status == "ERROR" and "PostgreSQL did not become ready" in saga.message


def test_a_late_or_foreign_result_changes_nothing():
    saga = ActionSaga.begin("op-1", "restart", {}, None, 0.0)
    take(saga)
    report(saga, command_id="op-0:0")
    assert take(saga) == [] and saga.outcome == "running"
    report(saga)
    take(saga)
    report(saga, success=False)
    assert take(saga) == [] and saga.outcome == "done"


def test_steps_run_in_order_and_the_outputs_add_up(monkeypatch):
    monkeypatch.setitem(actions.PLANS, "two_steps", lambda action, args: Plan(
        (Step("agent", "first"), Step("agent", "second", {"n": 2})), 10.0))
    saga = ActionSaga.begin("op-7", "two_steps", {}, "sealed-blob", 0.0)
    assert take(saga) == ["send"] and saga.step.command == "first" and saga.sealed == "sealed-blob"
    report(saga, output={"a": 1})
    assert take(saga) == ["send"] and saga.step.command == "second" and saga.command_id == "op-7:1"
    report(saga, output={"b": 2})
    assert take(saga) == ["completed"] and saga.output == {"a": 1, "b": 2}


def test_expiry_of_a_guest_action_keeps_the_status_it_had():
    saga = ActionSaga.begin("op-1", "create_users", {}, None, 0.0)
    take(saga)
    saga.expired()
    assert take(saga) == ["failed"]
    assert saga.status == "" and "did not finish within" in saga.message


def test_expiry_of_a_disruptive_action_leaves_error():
    saga = ActionSaga.begin("op-1", "restart", {}, None, 0.0)
    take(saga)
    saga.expired()
    assert take(saga) == ["failed"] and saga.status == "ERROR"
    saga.expired()
    assert take(saga) == []  # ends once


def test_deadlines_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("COFFER_DEADLINE_ACTION_RESTART", "7")
    saga = ActionSaga.begin("op-1", "restart", {}, None, 0.0)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert (saga.deadline(start) - start).total_seconds() == 7


def test_the_saga_survives_a_round_trip_through_its_row():
    saga = ActionSaga.begin("op-1", "restart", {}, None, 12.5)
    take(saga)
    again = ActionSaga.from_dict(saga.to_dict())
    assert again == saga


# --- resize: the scheduler's claim, then the agent; a failure gives the capacity back ---

D1 = {"id": "d1", "ram_mb": 512, "vcpus": 1, "disk_gb": 5}
D2 = {"id": "d2", "ram_mb": 1024, "vcpus": 1, "disk_gb": 10}


def resize() -> ActionSaga:
    saga = ActionSaga.begin("op-9", "resize", {"flavor": D2, "old_flavor": D1}, None, 0.0)
    assert take(saga) == ["send"]
    return saga


def test_a_resize_claims_capacity_first_then_restarts_the_engine():
    saga = resize()
    assert saga.step == Step("scheduler", "resize_claim", {"vcpus": 1, "ram_mb": 1024},
                             undo={"vcpus": 1, "ram_mb": 512, "force": True})
    saga.scheduler_reported(saga.command_id, True, "")
    assert take(saga) == ["send"]
    assert saga.step == Step("agent", "resize", {"flavor": D2})
    report(saga)
    assert take(saga) == ["completed"] and saga.status == "ACTIVE"
    assert saga.arguments["flavor"] == D2  # kept for the provisioner's own record of the flavor


def test_no_valid_host_ends_the_resize_with_the_instance_as_it_was():
    saga = resize()
    report(saga)  # an agent result cannot answer the scheduler's step
    assert take(saga) == []
    saga.scheduler_reported(saga.command_id, False, "No valid host was found. host-1: not enough RAM")
    assert take(saga) == ["failed"]
    assert saga.status == "" and "No valid host was found" in saga.message and not saga.undoing


def test_a_failed_restart_gives_the_claimed_capacity_back():
    saga = resize()
    saga.scheduler_reported(saga.command_id, True, "")
    take(saga)
    report(saga, success=False, error="MariaDB exited", running=True)  # the agent is back on the old flavor
    assert take(saga) == ["send"] and saga.undoing
    assert saga.step == Step("scheduler", "resize_claim", {"vcpus": 1, "ram_mb": 512, "force": True})
    saga.scheduler_reported(saga.command_id, True, "")
    assert take(saga) == ["failed"]
    assert saga.status == "ACTIVE" and saga.message == "resize failed: MariaDB exited" and saga.output == {}


def test_a_restart_that_never_reports_leaves_error_and_still_gives_the_capacity_back():
    saga = resize()
    saga.expired()  # the scheduler did not answer: the engine was not touched
    assert take(saga) == ["failed"] and saga.status == "" and "the scheduler did not report" in saga.message
    saga = resize()
    saga.scheduler_reported(saga.command_id, True, "")
    take(saga)
    saga.expired()
    assert take(saga) == ["send"] and saga.status == "ERROR"
    saga.expired()  # the undo does not answer either
    assert take(saga) == ["failed"] and saga.status == "ERROR"
    assert "Undoing resize_claim failed too" in saga.message


def test_an_undoing_saga_survives_its_row():
    saga = resize()
    saga.scheduler_reported(saga.command_id, True, "")
    take(saga)
    report(saga, success=False, error="x")
    take(saga)
    assert ActionSaga.from_dict(saga.to_dict()) == saga


VOLUME_RESIZE = {"volume_gb": 2, "old_volume_gb": 1, "flavor": {"id": "d1", "vcpus": 1, "ram_mb": 512, "disk_gb": 5}}


def test_a_volume_resize_claims_the_disk_stops_the_engine_has_the_driver_grow_it_and_starts_it_again():
    saga = ActionSaga.begin("op-v", "resize_volume", VOLUME_RESIZE, None, 0.0)
    assert take(saga) == ["send"] and saga.step == Step(
        "scheduler", "resize_claim", {"vcpus": 1, "ram_mb": 512, "disk_gb": 2},
        undo={"vcpus": 1, "ram_mb": 512, "disk_gb": 1, "force": True})
    saga.scheduler_reported(saga.command_id, True, "")
    assert take(saga) == ["send"] and saga.step == Step("agent", "volume_online", {"online": False},
                                                         undo={"online": True, "volume_gb": 1})
    report(saga, running=False)
    assert take(saga) == ["send"] and saga.step.kind == "compute" and saga.step.arguments == {"volume_gb": 2}
    saga.compute_reported(saga.command_id, True, "")
    assert take(saga) == ["send"] and saga.step.arguments == {"online": True, "volume_gb": 2}
    report(saga, output={"volume_gb": 2})
    assert take(saga) == ["completed"] and saga.status == "ACTIVE"


def test_a_volume_that_cannot_grow_gets_its_engine_back_on_the_old_size_and_gives_the_disk_back():
    saga = ActionSaga.begin("op-v", "resize_volume", VOLUME_RESIZE, None, 0.0)
    take(saga)
    saga.scheduler_reported(saga.command_id, True, "")
    take(saga)
    report(saga, running=False)
    take(saga)
    saga.compute_reported(saga.command_id, False, "VolumeError: resize2fs exited 1")
    assert take(saga) == ["send"] and saga.step == Step("agent", "volume_online", {"online": True, "volume_gb": 1})
    report(saga)
    assert take(saga) == ["send"] and saga.step == Step("scheduler", "resize_claim", {
        "vcpus": 1, "ram_mb": 512, "disk_gb": 1, "force": True})
    saga.scheduler_reported(saga.command_id, True, "")
    assert take(saga) == ["failed"]
    assert saga.status == "ACTIVE" and "resize2fs exited 1" in saga.message


def test_no_room_for_a_bigger_volume_changes_nothing():
    saga = ActionSaga.begin("op-v", "resize_volume", VOLUME_RESIZE, None, 0.0)
    take(saga)
    saga.scheduler_reported(saga.command_id, False, "No valid host was found. host1: not enough disk")
    assert take(saga) == ["failed"] and saga.status == "" and "not enough disk" in saga.message


def test_stop_and_start_are_disruptive_agent_verbs():
    stop = ActionSaga.begin("op-s", "stop", {}, None, 0.0)
    assert stop.disruptive and stop.step == Step("agent", "stop")
    report(stop, running=False)
    assert stop.status == "SHUTDOWN"


def test_an_access_change_is_the_drivers_alone_and_reports_where_the_instance_is_public():
    access = {"access": {"is_public": True, "allowed_cidrs": ["203.0.113.0/24"]}}
    saga = ActionSaga.begin("op-a", "set_access", access, None, 0.0)
    assert take(saga) == ["send"] and saga.step == Step("compute", "set_access", access)
    saga.compute_reported(saga.command_id, True, "", {"public_address": "192.0.2.2", "public_port": 0})
    assert take(saga) == ["completed"]
    # the engine was not touched: its status stays what it was
    assert saga.status == "" and saga.output == {"public_address": "192.0.2.2", "public_port": 0}


def test_an_access_change_that_fails_ends_failed_saying_why_and_leaves_the_status_alone():
    saga = ActionSaga.begin("op-a", "set_access", {"access": {"is_public": True, "allowed_cidrs": ["::/0"]}},
                            None, 0.0)
    take(saga)
    saga.compute_reported(saga.command_id, False, "RuntimeError: this host has only loopback addresses")
    assert take(saga) == ["failed"] and saga.status == ""
    assert "only loopback addresses" in saga.message
