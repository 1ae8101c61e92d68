"""Day-2 actions as a pure state machine: a plan of steps run one after another,
each with a deadline; the handlers persist the saga and perform the effects it asks
for. An action without a plan of its own is one step: the agent verb of the same
name with the request's arguments (databases, users, root, configuration, ...).

A step is the agent's (a verb), the scheduler's (a capacity claim) or the compute
driver's (done by the provisioner itself, e.g. growing a volume). A step that
can be undone says how; when a later step fails, the done steps are undone, newest
first, before the action ends failed (a resize gives back the capacity it claimed)."""
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
    kind: str                      # "agent": run verb `command` on the instance's agent; "scheduler": ask it;
    #                                "compute": the provisioner's driver does `command`
    command: str
    arguments: dict = field(default_factory=dict)
    undo: dict | None = None       # arguments of the same command that reverse this step once done

    def undoing(self) -> "Step":
        return Step(self.kind, self.command, self.undo)


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


def resize_flavor(action: str, arguments: dict) -> Plan:
    """The scheduler re-claims the host's capacity for the new flavor, then the agent
    restarts the engine with memory settings for it (back on the old ones if that
    fails). A failure after the claim gives the old flavor's capacity back."""
    new, old = arguments["flavor"], arguments["old_flavor"]
    claim = Step("scheduler", "resize_claim", {"vcpus": new["vcpus"], "ram_mb": new["ram_mb"]},
                 undo={"vcpus": old["vcpus"], "ram_mb": old["ram_mb"], "force": True})
    restart = Step("agent", "resize", {"flavor": new})
    return Plan((claim, restart), deadline_seconds(action, 120), disruptive=True)


def resize_volume(action: str, arguments: dict) -> Plan:
    """The scheduler claims the host's disk for the bigger volume (no room: "No valid
    host", nothing else changes); then, as Trove does with a Cinder volume, the engine
    stops and lets go of its volume, the driver grows it and its file system, the
    engine starts on it again. A failed growth brings the engine back on the volume as
    it was and gives the disk back."""
    new, old, flavor = arguments["volume_gb"], arguments["old_volume_gb"], arguments["flavor"]
    same = {"vcpus": flavor["vcpus"], "ram_mb": flavor["ram_mb"]}
    claim = Step("scheduler", "resize_claim", {**same, "disk_gb": new}, undo={**same, "disk_gb": old, "force": True})
    offline = Step("agent", "volume_online", {"online": False}, undo={"online": True, "volume_gb": old})
    grow = Step("compute", "grow_volume", {"volume_gb": new})
    online = Step("agent", "volume_online", {"online": True, "volume_gb": new})
    return Plan((claim, offline, grow, online), deadline_seconds(action, 120), disruptive=True)


def set_access(action: str, arguments: dict) -> Plan:
    """Public exposure is the driver's alone (a forwarder to the instance's own
    address): the engine is not touched, so the step is the compute driver's."""
    return Plan((Step("compute", "set_access", arguments),), deadline_seconds(action, 30))


# action -> how to build its plan; actions not listed are guest verbs
PLANS: dict[str, PlanBuilder] = {
    "restart": disruptive_verb(120),
    "resize": resize_flavor,
    "resize_volume": resize_volume,
    # the host's capacity stays claimed while stopped: a start never waits for room
    "stop": disruptive_verb(120),
    "start": disruptive_verb(120),
    "set_access": set_access,
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
    arguments: dict = field(default_factory=dict)  # the action's, as requested
    undoing: bool = False          # a step failed: the done steps are being undone
    effects: list[str] = field(default_factory=list)  # "send", "completed", "failed"

    @classmethod
    def begin(cls, operation_id: str, action: str, arguments: dict, sealed: str | None,
              started_at: float) -> "ActionSaga":
        plan = plan_for(action, arguments)
        saga = cls(operation_id, action, [s.__dict__ for s in plan.steps], plan.deadline_seconds,
                   plan.disruptive, sealed=sealed, started_at=started_at, arguments=arguments)
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

    def _current(self, command_id: str, kind: str) -> bool:
        """False for a late or foreign result."""
        return self.outcome == "running" and command_id == self.command_id and self.step.kind == kind

    def agent_reported(self, command_id: str, success: bool, error: str, engine_running: bool,
                       restart_pending: bool, output: dict) -> None:
        if not self._current(command_id, "agent"):
            return
        self.status = instance_status(engine_running, restart_pending, success)
        if not success:
            self._step_failed(f"{self.action} failed: {error}")
            return
        if not self.undoing:
            self.output.update(output)
        self._next()

    def scheduler_reported(self, command_id: str, success: bool, reason: str) -> None:
        """The scheduler's answer; it says nothing about the engine's status."""
        if not self._current(command_id, "scheduler"):
            return
        if not success:
            self._step_failed(f"{self.action} failed: {reason}")
            return
        self._next()

    def compute_reported(self, command_id: str, success: bool, error: str, output: dict | None = None) -> None:
        """The driver's answer; like the scheduler's, it says nothing about the engine."""
        if not self._current(command_id, "compute"):
            return
        if not success:
            self._step_failed(f"{self.action} failed: {error}")
            return
        if not self.undoing:
            self.output.update(output or {})
        self._next()

    def expired(self) -> None:
        if self.outcome != "running":
            return
        # only an agent step touches the engine: its state is unknown only then
        if self.step.kind == "agent":
            self.status = "ERROR" if self.disruptive else self.status
        who = {"agent": "the instance's agent", "scheduler": "the scheduler"}.get(self.step.kind, "the driver")
        self._step_failed(f"{self.action} did not finish within {self.deadline_seconds:.0f} s: {who} did not "
                          "report back.")

    def refused(self, message: str) -> None:
        self.status = ""
        self._end_failed(message)

    def _next(self) -> None:
        if self.index + 1 < len(self.steps):
            self.index += 1
            self._send()
        elif self.undoing:
            self._end_failed(self.message)
        else:
            self.outcome = "done"
            self.effects.append("completed")

    def _step_failed(self, message: str) -> None:
        if self.undoing:  # an undo that fails is said; the others still run
            self.message += f" Undoing {self.step.command} failed too: {message}"
            self._next()
            return
        undo = [Step(**s).undoing().__dict__ for s in reversed(self.steps[:self.index]) if s.get("undo") is not None]
        if not undo:
            self._end_failed(message)
            return
        self.message, self.undoing = message, True
        self.steps = self.steps[:self.index + 1] + undo
        self._next()

    def _end_failed(self, message: str) -> None:
        self.outcome, self.message = "failed", message
        self.effects.append("failed")

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "effects"}

    @classmethod
    def from_dict(cls, data: dict) -> "ActionSaga":
        return cls(**data)
