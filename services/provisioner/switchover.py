"""A replica set changing its primary, as a pure state machine: a planned promote
(the old primary stops, the chosen replica catches up to its last position and is
promoted, the old primary follows it: no acknowledged write is lost) or a failover
(the old primary is fenced first, powered off whatever its agent does; the replica
with the most advanced position is promoted). Then every follower gets an account
on the new primary and re-points to it, the stable endpoint moves, and the set's
epoch is raised, so commands decided before it are refused by the agents.

Every step has a deadline; a step that fails ends the switchover failed with a
message (an alert), never in a retry loop. The handler (switchovers.py) persists
it and performs the effects it lists."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(f"COFFER_FAILOVER_{name.upper()}_SECONDS", default))


# how long a step may take; asking the replicas where they are is short on purpose:
# a replica that does not answer at once is not the one to promote
DEADLINES = {"stopping": _seconds("stop", 30), "asking": _seconds("ask", 2), "promoting": _seconds("promote", 30),
             "serving": _seconds("serve", 15), "following": _seconds("follow", 60)}


@dataclass
class Switchover:
    op_id: str
    kind: str                      # "promote" (planned) or "failover" (the primary is lost)
    set_id: str
    old_primary: str
    replicas: list[str]            # the set's replicas when it began
    epoch: int                     # the set's new epoch
    target: str | None = None      # the replica to promote (chosen by position in a failover)
    step: str = "begin"
    waiting: list[str] = field(default_factory=list)   # command ids not answered yet
    positions: dict = field(default_factory=dict)      # replica -> position (a failover's question)
    catch_up_to: int = 0           # a planned promote: the old primary's last position
    followers_failed: list[str] = field(default_factory=list)
    operation_id: str | None = None  # the API's operation (promote / eject action), if any
    operation_instance: str | None = None  # the instance that operation is on
    sealed: dict = field(default_factory=dict)  # follower -> its new password, sealed to its agent
    reason: str = ""
    message: str = ""
    started_at: float = 0.0
    effects: list = field(default_factory=list)  # ("send", target, verb, args, command_id) | (name, ...)

    @property
    def followers(self) -> list[str]:
        """Who follows the new primary: the other replicas, and after a planned promote the old primary."""
        others = [r for r in self.replicas if r != self.target]
        return others + [self.old_primary] if self.kind == "promote" else others

    def deadline(self, now: datetime) -> datetime:
        return now + timedelta(seconds=DEADLINES.get(self.step, 30))

    def _cid(self, what: str, who: str) -> str:
        return f"sw:{self.op_id}:{what}:{who}"

    def _send(self, who: str, verb: str, arguments: dict, what: str) -> None:
        cid = self._cid(what, who)
        self.waiting.append(cid)
        self.effects.append(("send", who, verb, arguments, cid))

    def begin(self) -> None:
        self.effects.append(("progress", "started", self.reason))
        if self.kind == "promote":
            self.step = "stopping"
            self._send(self.old_primary, "stop_engine", {}, "stop")
            return
        # a failover asks the replicas where they are before it touches anything:
        # with none to promote, the old primary is left as it is (and an alert said)
        self.step = "asking"
        for replica in self.replicas:
            self._send(replica, "replication_state", {}, "ask")
        if not self.replicas:
            self._choose()

    def reported(self, command_id: str, success: bool, error: str, output: dict) -> None:
        if command_id not in self.waiting or self.step in ("done", "failed"):
            return  # late, foreign, or answered already
        self.waiting.remove(command_id)
        who = command_id.rsplit(":", 1)[1]
        if self.step == "stopping":
            if not success:
                return self._fail(f"the primary could not be stopped for the switchover: {error}", restart=True)
            self.catch_up_to = int(output.get("position", 0))
            self.effects.append(("progress", "stopped", f"{self.old_primary} stopped at position {self.catch_up_to}"))
            return self._promote()
        if self.step == "asking":
            if success:
                self.positions[who] = int(output.get("position", 0))
            if not self.waiting:
                self._choose()
            return
        if self.step == "promoting":
            if not success:
                return self._fail(f"{self.target} could not be promoted: {error}", restart=self.kind == "promote")
            self.effects.append(("progress", "promoted", f"{self.target} is the primary"))
            # clients reach the new primary at once; the followers catch up behind it
            self.effects.append(("move_endpoint", self.target))
            return self._serve()
        if self.step == "serving":
            if not success:
                self.followers_failed.append(who)
            if not self.waiting:
                self._follow()
            return
        if self.step == "following":
            if not success:
                self.followers_failed.append(who)
            if not self.waiting:
                self._finish()

    def expired(self) -> None:
        if self.step == "asking":  # the replicas that answered are the candidates
            self.waiting.clear()
            return self._choose()
        if self.step in ("serving", "following"):  # the new primary is up: silent followers are left behind
            self.followers_failed += [c.rsplit(":", 1)[1] for c in self.waiting]
            self.waiting.clear()
            return self._follow() if self.step == "serving" else self._finish()
        if self.step in ("stopping", "promoting"):
            self._fail(f"the {self.step} step did not finish within {DEADLINES[self.step]:.0f} s",
                       restart=self.kind == "promote")

    def _choose(self) -> None:
        if not self.positions:
            return self._fail("no healthy replica answered: nothing to promote")
        # the most advanced replica; ties go to the first in the set's order
        self.target = max(self.replicas, key=lambda r: (r in self.positions, self.positions.get(r, -1),
                                                        -self.replicas.index(r)))
        self.effects.append(("progress", "chosen", f"{self.target} at position {self.positions[self.target]}"))
        # fenced before the promote: from here on the old primary takes no write
        self.effects.append(("fence", self.old_primary))
        self.effects.append(("progress", "fenced", f"{self.old_primary} powered off"))
        self._promote()

    def _promote(self) -> None:
        self.step = "promoting"
        self._send(self.target, "promote", {"catch_up_to": self.catch_up_to}, "promote")

    def _serve(self) -> None:
        self.step = "serving"
        if not self.followers:
            return self._follow()
        for follower in self.followers:
            cid = self._cid("serve", follower)
            self.waiting.append(cid)
            self.effects.append(("serve", follower, cid))

    def _follow(self) -> None:
        self.step = "following"
        ready = [f for f in self.followers if f not in self.followers_failed]
        if not ready:
            return self._finish()
        for follower in ready:
            cid = self._cid("follow", follower)
            self.waiting.append(cid)
            self.effects.append(("follow", follower, cid))

    def _finish(self) -> None:
        self.step = "done"
        self.effects.append(("completed",))

    def _fail(self, message: str, restart: bool = False) -> None:
        self.step, self.message = "failed", message
        self.waiting.clear()
        if restart:  # a planned promote that failed: the old primary takes writes again
            self.effects.append(("send", self.old_primary, "restart", {}, self._cid("undo", self.old_primary)))
        self.effects.append(("failed", message))

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "effects"}

    @classmethod
    def from_dict(cls, data: dict) -> "Switchover":
        return cls(**data)
