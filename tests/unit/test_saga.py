"""services/provisioner/saga.py: the create saga as a pure state machine."""
from __future__ import annotations

import importlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from services.provisioner import saga as saga_module
from services.provisioner.saga import FAULTS, STEP_DEADLINES, CreateSaga

KEY, NEW_KEY = "pk-1", "pk-2"
STEPS = ["placing", "registering", "awaiting_credentials", "restoring", "sourcing", "preparing"]


def take(s: CreateSaga) -> list[str]:
    """The effects the handler performs, cleared as the handler does."""
    effects = list(s.effects)
    s.effects.clear()
    return effects


def to_preparing(s: CreateSaga, command_id: str = "cmd-1") -> None:
    assert s.step == "preparing" and take(s) == ["prepare"]
    s.prepare_command_id = command_id  # the handler assigns it with the "prepare" effect


def test_happy_path_without_credentials():
    s = CreateSaga()
    assert s.step == "placing" and s.effects == []
    s.placed()
    assert s.step == "registering" and take(s) == ["launch"]
    s.agent_registered(KEY)
    to_preparing(s)
    s.prepare_finished("cmd-1", success=True)
    assert s.step == "done" and take(s) == ["activate"]


def test_placed_twice_launches_once():
    s = CreateSaga()
    s.placed()
    s.placed()
    assert s.step == "registering" and take(s) == ["launch"]


def test_waits_for_credentials_after_registration():
    s = CreateSaga(needs_credentials=True)
    s.placed()
    take(s)
    s.agent_registered(KEY)
    assert s.step == "awaiting_credentials" and take(s) == []
    s.credentials_arrived("sealed", KEY)
    to_preparing(s)
    assert s.sealed_credentials == "sealed"


def test_credentials_before_registration_are_kept():
    s = CreateSaga(needs_credentials=True)
    s.placed()
    take(s)
    s.credentials_arrived("sealed", KEY)
    assert s.step == "registering" and take(s) == []
    s.agent_registered(KEY)
    to_preparing(s)
    assert s.sealed_credentials == "sealed"


def test_credentials_sealed_to_old_key_are_ignored_after_new_key_registered():
    s = CreateSaga(needs_credentials=True)
    s.placed()
    take(s)
    s.agent_registered(KEY)
    s.agent_registered(NEW_KEY)  # agent restarted with a new key
    s.credentials_arrived("sealed-old", KEY)
    assert s.step == "awaiting_credentials" and take(s) == []
    s.credentials_arrived("sealed-new", NEW_KEY)
    to_preparing(s)
    assert s.sealed_credentials == "sealed-new"


def test_credentials_sealed_to_other_key_before_first_registration_are_not_used():
    s = CreateSaga(needs_credentials=True)
    s.placed()
    take(s)
    s.credentials_arrived("sealed-for-pk-1", KEY)
    s.agent_registered(NEW_KEY)
    assert s.step == "awaiting_credentials"
    assert take(s) == []


def test_prepare_result_with_wrong_command_id_is_ignored():
    s = CreateSaga()
    s.placed()
    s.agent_registered(KEY)
    take(s)
    s.prepare_command_id = "cmd-1"
    s.prepare_finished("cmd-stale", success=True)
    s.prepare_finished("cmd-stale", success=False)
    assert s.step == "preparing" and take(s) == []
    s.prepare_finished("cmd-1", success=True)
    assert s.step == "done" and take(s) == ["activate"]


def test_prepare_failure_fails_the_saga():
    s = CreateSaga()
    s.placed()
    take(s)
    s.agent_registered(KEY)
    to_preparing(s)
    s.prepare_finished("cmd-1", success=False)
    assert s.step == "failed" and take(s) == ["fail"]


def test_prepare_result_before_preparing_is_ignored():
    s = CreateSaga(prepare_command_id="cmd-1")
    s.placed()
    take(s)
    s.prepare_finished("cmd-1", success=True)
    assert s.step == "registering" and take(s) == []


@pytest.mark.parametrize("step", STEPS)
def test_expired_step_fails_with_its_fault(step):
    s = CreateSaga(step=step)
    assert s.expired() == FAULTS[step]
    assert s.step == "failed" and take(s) == ["fail"]


def test_every_step_has_a_deadline_and_a_fault():
    assert set(STEP_DEADLINES) == set(FAULTS) == set(STEPS)
    assert all(v > 0 for v in STEP_DEADLINES.values())


@pytest.mark.parametrize("step", STEPS)
def test_deadline_is_now_plus_the_steps_budget(step):
    now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert CreateSaga(step=step).deadline(now) == now + timedelta(seconds=STEP_DEADLINES[step])


def test_deadlines_can_be_overridden_by_environment(monkeypatch):
    default = saga_module.STEP_DEADLINES["preparing"]
    monkeypatch.setenv("COFFER_DEADLINE_PREPARING", "7.5")
    monkeypatch.setenv("COFFER_DEADLINE_AWAITING_CREDENTIALS", "3")
    try:
        reloaded = importlib.reload(saga_module)
        assert reloaded.STEP_DEADLINES["preparing"] == 7.5
        assert reloaded.STEP_DEADLINES["awaiting_credentials"] == 3
        assert reloaded.STEP_DEADLINES["placing"] == 30
        now = datetime(2024, 5, 1, tzinfo=timezone.utc)
        assert reloaded.CreateSaga(step="preparing").deadline(now) == now + timedelta(seconds=7.5)
    finally:
        monkeypatch.delenv("COFFER_DEADLINE_PREPARING")
        monkeypatch.delenv("COFFER_DEADLINE_AWAITING_CREDENTIALS")
        importlib.reload(saga_module)
    assert saga_module.STEP_DEADLINES["preparing"] == default


def test_persisted_state_round_trips():
    s = CreateSaga(needs_credentials=True)
    s.placed()
    s.credentials_arrived("sealed", KEY)
    s.agent_registered(KEY)
    s.prepare_command_id = "cmd-9"
    row = json.dumps(s.to_dict())  # as the handler stores it
    assert "effects" not in s.to_dict() and "step" not in s.to_dict()
    back = CreateSaga.from_row(s.step, json.loads(row))
    assert back == CreateSaga(
        step="preparing", needs_credentials=True, registered=True, sealed_credentials="sealed",
        sealed_for=KEY, agent_public_key=KEY, prepare_command_id="cmd-9", effects=[],
    )
    back.prepare_finished("cmd-9", success=True)
    assert back.step == "done" and back.effects == ["activate"]


def test_a_restore_fills_the_instance_before_its_databases_and_users_are_made():
    s = CreateSaga(needs_credentials=True, restore={"backup_id": "b-1", "restore_time": None})
    s.placed()
    take(s)
    s.agent_registered(KEY)
    assert s.step == "restoring" and take(s) == ["restore"]
    s.credentials_arrived("sealed", KEY)   # they wait for the restore
    s.agent_registered(KEY)                # an agent restart does not ask twice
    assert s.step == "restoring" and take(s) == []
    assert s.restore_finished(True, "") is None
    to_preparing(s)
    s.prepare_finished("cmd-1", success=True)
    assert s.step == "done" and take(s) == ["activate"]


def test_a_failed_restore_fails_the_create_with_its_reason():
    s = CreateSaga(restore={"backup_id": "b-1", "restore_time": None})
    s.placed()
    s.agent_registered(KEY)
    take(s)
    assert s.restore_finished(False, "Backup b-1 could not be restored: frame 0 fails authentication") \
        == "Backup b-1 could not be restored: frame 0 fails authentication"
    assert s.step == "failed" and take(s) == ["fail"]
    assert s.restore_finished(True, "") is None and s.step == "failed"  # a late answer changes nothing


def test_a_replica_is_served_by_its_primary_before_it_copies_it():
    s = CreateSaga(step="registering", replica_of="primary-id")
    s.agent_registered("key")
    assert s.step == "sourcing" and take(s) == ["source"]
    s.source_command_id = "create:r:source"
    s.source_finished("create:r:other", True)
    assert s.step == "sourcing" and take(s) == []
    s.source_finished("create:r:source", True)
    assert s.step == "preparing" and take(s) == ["prepare"]


def test_a_primary_that_cannot_serve_fails_the_replica():
    s = CreateSaga(step="sourcing", replica_of="primary-id", source_command_id="c")
    s.source_finished("c", False)
    assert s.step == "failed" and take(s) == ["fail"]
