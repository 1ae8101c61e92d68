"""The create saga as a pure state machine. Every step has a deadline; the
handlers persist the state and perform the effects this module asks for."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(f"COFFER_DEADLINE_{name.upper()}", default))


# Deadline of each step, in seconds (environment COFFER_DEADLINE_<STEP> overrides).
STEP_DEADLINES = {
    "placing": _seconds("placing", 30),
    "registering": _seconds("registering", 60),
    "awaiting_credentials": _seconds("awaiting_credentials", 30),
    "restoring": _seconds("restoring", 1800),
    "sourcing": _seconds("sourcing", 30),
    "preparing": _seconds("preparing", 120),
}

FAULTS = {
    "placing": "The scheduler did not place the instance in time.",
    "registering": "The instance's agent did not start in time.",
    "awaiting_credentials": "The user credentials did not reach the provisioner in time.",
    "restoring": "The backup was not restored in time.",
    "sourcing": "The primary did not get ready to serve the replica in time.",
    "preparing": "The database did not become ready in time.",
}


@dataclass
class CreateSaga:
    step: str = "placing"
    needs_credentials: bool = False
    registered: bool = False
    sealed_credentials: str | None = None
    sealed_for: str | None = None
    agent_public_key: str | None = None
    prepare_command_id: str | None = None
    restore: dict | None = None    # {"backup_id", "restore_time"}: fill the instance from a backup first
    restored: bool = False
    started_at: float = 0.0  # epoch seconds, for the saga-duration metric
    replica_of: str | None = None   # a replica: its primary serves it (an account, a slot) before it copies
    source_command_id: str | None = None
    effects: list[str] = field(default_factory=list)  # what the handler must do now

    def deadline(self, now: datetime) -> datetime:
        return now + timedelta(seconds=STEP_DEADLINES[self.step])

    def placed(self) -> None:
        if self.step == "placing":
            self.step = "registering"
            self.effects.append("launch")

    def agent_registered(self, public_key: str) -> None:
        self.registered, self.agent_public_key = True, public_key
        self._maybe_prepare()

    def credentials_arrived(self, sealed: str, public_key: str) -> None:
        self.sealed_credentials, self.sealed_for = sealed, public_key
        self._maybe_prepare()

    def _maybe_prepare(self) -> None:
        if self.step not in ("registering", "awaiting_credentials") or not self.registered:
            return
        # a restore replaces the data first: the databases and users are made in the restored data
        if self.restore and not self.restored:
            self.step = "restoring"
            self.effects.append("restore")
            return
        # credentials only open with the key they were sealed to
        if self.needs_credentials and not (self.sealed_credentials and self.sealed_for == self.agent_public_key):
            self.step = "awaiting_credentials"
            return
        if self.replica_of:
            self.step = "sourcing"
            self.effects.append("source")
            return
        self.step = "preparing"
        self.effects.append("prepare")

    def restore_finished(self, success: bool, message: str) -> str | None:
        if self.step != "restoring":
            return None
        if not success:
            self.step = "failed"
            self.effects.append("fail")
            return message
        self.restored, self.step = True, "awaiting_credentials"
        self._maybe_prepare()
        return None

    def source_finished(self, command_id: str, success: bool) -> None:
        if self.step != "sourcing" or command_id != self.source_command_id:
            return
        self.step = "preparing" if success else "failed"
        self.effects.append("prepare" if success else "fail")

    def prepare_finished(self, command_id: str, success: bool) -> None:
        if self.step != "preparing" or command_id != self.prepare_command_id:
            return
        self.step = "done" if success else "failed"
        self.effects.append("activate" if success else "fail")

    def expired(self) -> str:
        fault = FAULTS[self.step]
        self.step = "failed"
        self.effects.append("fail")
        return fault

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("effects", "step")}

    @classmethod
    def from_row(cls, step: str, data: dict) -> "CreateSaga":
        return cls(step=step, **data)
