"""services/backup/retention.py: chains are kept or let go whole."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.backup.retention import Backup, chains, expired_chains

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def day(n: float) -> datetime:
    return NOW - timedelta(days=n)


# three chains: f1 (10 days old, with an incremental 1 day old), f2 (5 days), f3 (2 days, incremental chain)
BACKUPS = [
    Backup("f1", None, "COMPLETED", day(10)), Backup("i1", "f1", "COMPLETED", day(1)),
    Backup("f2", None, "COMPLETED", day(5)),
    Backup("f3", None, "COMPLETED", day(2)), Backup("i3", "f3", "COMPLETED", day(1.5)),
    Backup("i3b", "i3", "COMPLETED", day(1.2)),
]


def test_chains_follow_parents_to_their_full_backup():
    assert {k: [b.id for b in v] for k, v in chains(BACKUPS).items()} == {
        "f1": ["f1", "i1"], "f2": ["f2"], "f3": ["f3", "i3", "i3b"]}


def test_keep_the_last_n_chains():
    assert expired_chains(BACKUPS, keep_last=1, keep_days=None, now=NOW) == ["f2", "f1"]
    assert expired_chains(BACKUPS, keep_last=3, keep_days=None, now=NOW) == []


def test_a_chain_is_as_young_as_its_newest_backup():
    # f1 is 10 days old but its incremental is 1 day old: kept, or i1 would lose its parent
    assert expired_chains(BACKUPS, keep_last=None, keep_days=3, now=NOW) == ["f2"]


def test_either_rule_keeps_a_chain_and_no_policy_keeps_all():
    assert expired_chains(BACKUPS, keep_last=1, keep_days=3, now=NOW) == ["f2"]
    assert expired_chains(BACKUPS, keep_last=None, keep_days=None, now=NOW) == []


def test_a_chain_with_a_running_backup_is_kept():
    running = BACKUPS + [Backup("i2", "f2", "BUILDING", day(0))]
    assert expired_chains(running, keep_last=1, keep_days=None, now=NOW) == ["f1"]
