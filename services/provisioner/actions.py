"""Day-2 actions as a pure state machine: a plan of steps run one after another,
each with a deadline; the handlers persist the saga and perform the effects it asks
for. An action without a plan of its own is one step: the agent verb of the same
name with the request's arguments (databases, users, root, configuration, ...)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

DEFAULT_DEADLINE_SECONDS = 60.0


def deadline_seconds(action: str, default: float = DEFAULT_DEADLINE_SECONDS) -> float:
    """COFFER_DEADLINE_ACTION_<ACTION> overrides an action's deadline per step."""
    return float(os.environ.get(f"COFFER_DEADLINE_ACTION_{action.upper()}", default))


@dataclass(frozen=True)
class Step:
    kind: str                      # "agent": run `command` on the instance's agent
    command: str
    arguments: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    deadline_seconds: float
    # a disruptive action stops the engine on its way: if it never reports back,
    # the engine's state is unknown and the instance goes to ERROR
    disruptive: bool = False


PlanBuilder = Callable[[str, dict], Plan]


def guest_verb(action: str, arguments: dict) -> Plan:
    return Plan((Step("agent", action, arguments),), deadline_seconds(action))


def disruptive_verb(default_deadline: float) -> PlanBuilder:
    def build(action: str, arguments: dict) -> Plan:
        return Plan((Step("agent", action, arguments),), deadline_seconds(action, default_deadline), True)
    return build


# action -> how to build its plan; actions not listed are guest verbs
PLANS: dict[str, PlanBuilder] = {
    "restart": disruptive_verb(120),
}


def plan_for(action: str, arguments: dict) -> Plan:
    return PLANS.get(action, guest_verb)(action, arguments)


def instance_status(engine_running: bool, restart_pending: bool, succeeded: bool) -> str:
    """The instance's status from its agent's last report."""
    if not engine_running:
        return "SHUTDOWN" if succeeded else "ERROR"
    return "RESTART_REQUIRED" if restart_pending else "ACTIVE"


@dataclass
class ActionSaga:
    operation_id: str
    action: str
    steps: list[dict]              # Step fields, as stored
    deadline_seconds: float
    disruptive: bool = False
    index: int = 0
    command_id: str | None = None
    outcome: str = "running"       # running, done, failed
    status: str = ""               # the instance's status at the end; "" = as it was before
    message: str = ""
    output: dict = field(default_factory=dict)
    sealed: str | None = None      # secrets for the agent, sealed to its key: only it can open them
    started_at: float = 0.0
    effects: list[str] = field(default_factory=list)  # "send", "completed", "failed"

    @classmethod
    def begin(cls, operation_id: str, action: str, arguments: dict, sealed: str | None,
              started_at: float) -> "ActionSaga":
        plan = plan_for(action, arguments)
        saga = cls(operation_id, action, [s.__dict__ for s in plan.steps], plan.deadline_seconds,
                   plan.disruptive, sealed=sealed, started_at=started_at)
        saga._send()
        return saga

    def deadline(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.deadline_seconds)

    @property
    def step(self) -> Step:
        return Step(**self.steps[self.index])

    def _send(self) -> None:
        self.command_id = f"{self.operation_id}:{self.index}"
        self.effects.append("send")

    def agent_reported(self, command_id: str, success: bool, error: str, engine_running: bool,
                       restart_pending: bool, output: dict) -> None:
        if self.outcome != "running" or command_id != self.command_id:
            return  # a late or foreign result
        self.status = instance_status(engine_running, restart_pending, success)
        if not success:
            self._fail(f"{self.action} failed: {error}")
            return
        self.output.update(output)
        if self.index + 1 < len(self.steps):
            self.index += 1
            self._send()
            return
        self.outcome = "done"
        self.effects.append("completed")

    def expired(self) -> None:
        if self.outcome != "running":
            return
        self.status = "ERROR" if self.disruptive else ""
        self._fail(f"{self.action} did not finish within {self.deadline_seconds:.0f} s: the instance's agent "
                   "did not report back.")

    def refused(self, message: str) -> None:
        self.status = ""
        self._fail(message)

    def _fail(self, message: str) -> None:
        self.outcome, self.message = "failed", message
        self.effects.append("failed")

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "effects"}

    @classmethod
    def from_dict(cls, data: dict) -> "ActionSaga":
        return cls(**data)
