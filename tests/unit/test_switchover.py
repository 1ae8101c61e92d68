"""The switchover state machine (services/provisioner/switchover.py): who is
promoted, when the old primary is fenced, and that a failed step ends it."""
from __future__ import annotations

from services.provisioner.switchover import Switchover


def effects(s: Switchover) -> list:
    out, s.effects = s.effects, []
    return out


def sent(s: Switchover) -> list[tuple[str, str]]:
    return [(e[1], e[2]) for e in effects(s) if e[0] == "send"]


def failover(replicas=("r1", "r2")) -> Switchover:
    s = Switchover("op", "failover", "set", "p", list(replicas), epoch=2)
    s.begin()
    return s


def test_a_failover_promotes_the_most_advanced_replica_after_fencing_the_old_primary():
    s = failover()
    assert sent(s) == [("r1", "replication_state"), ("r2", "replication_state")]
    s.reported("sw:op:ask:r1", True, "", {"position": 10})
    assert effects(s) == []  # r2 has not answered yet
    s.reported("sw:op:ask:r2", True, "", {"position": 12})
    out = effects(s)
    kinds = [e[0] for e in out]
    assert kinds.index("fence") < kinds.index("send")
    assert ("fence", "p") in out and out[-1][1:3] == ("r2", "promote")
    s.reported("sw:op:promote:r2", True, "", {})
    out = effects(s)
    assert ("move_endpoint", "r2") in out  # clients reach the new primary before the followers re-point
    assert [e[:2] for e in out if e[0] == "serve"] == [("serve", "r1")]
    s.reported("sw:op:serve:r1", True, "", {})
    assert [e[:2] for e in effects(s) if e[0] == "follow"] == [("follow", "r1")]
    s.reported("sw:op:follow:r1", True, "", {})
    assert s.step == "done" and [e[0] for e in effects(s)] == ["completed"]


def test_no_answering_replica_means_no_failover_and_no_fence():
    s = failover()
    effects(s)
    s.reported("sw:op:ask:r1", False, "engine down", {})
    s.expired()  # r2 never answers
    out = effects(s)
    assert s.step == "failed" and "no healthy replica" in s.message
    assert not any(e[0] == "fence" for e in out)


def test_a_silent_replica_is_not_waited_for_beyond_the_question_deadline():
    s = failover()
    effects(s)
    s.reported("sw:op:ask:r2", True, "", {"position": 3})
    s.expired()
    assert s.target == "r2" and s.step == "promoting"


def test_a_planned_promote_catches_up_to_the_stopped_primary_and_the_old_primary_follows():
    s = Switchover("op", "promote", "set", "p", ["r1", "r2"], epoch=5, target="r1")
    s.begin()
    assert sent(s) == [("p", "stop_engine")]
    s.reported("sw:op:stop:p", True, "", {"position": 99})
    out = effects(s)
    assert out[-1][1:4] == ("r1", "promote", {"catch_up_to": 99})
    s.reported("sw:op:promote:r1", True, "", {})
    assert sorted(e[1] for e in effects(s) if e[0] == "serve") == ["p", "r2"]


def test_a_failed_promote_ends_failed_once_and_restarts_the_old_primary():
    s = Switchover("op", "promote", "set", "p", ["r1"], epoch=5, target="r1")
    s.begin()
    s.reported("sw:op:stop:p", True, "", {"position": 1})
    effects(s)
    s.reported("sw:op:promote:r1", False, "boom", {})
    out = effects(s)
    assert s.step == "failed" and ("p", "restart") in [(e[1], e[2]) for e in out if e[0] == "send"]
    s.reported("sw:op:promote:r1", False, "boom", {})  # a redelivery changes nothing
    s.expired()
    assert effects(s) == []
