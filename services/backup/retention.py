"""Backup retention as a pure rule: which chains (a full backup and the incremental
ones built on it) a policy lets go. A chain is kept whole or deleted whole, so no kept
backup ever loses one it depends on; its age is its newest backup's."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

RUNNING = ("NEW", "BUILDING", "SAVING")


@dataclass(frozen=True)
class Backup:
    id: str
    parent_id: str | None
    status: str
    created_at: datetime


def chains(backups: list[Backup]) -> dict[str, list[Backup]]:
    """Full backup id -> the backups of its chain (itself first)."""
    by_id = {b.id: b for b in backups}

    def root(b: Backup) -> str:
        while b.parent_id and b.parent_id in by_id:
            b = by_id[b.parent_id]
        return b.id
    out: dict[str, list[Backup]] = {}
    for b in sorted(backups, key=lambda b: b.created_at):
        out.setdefault(root(b), []).append(b)
    return out


def expired_chains(backups: list[Backup], keep_last: int | None, keep_days: int | None,
                   now: datetime) -> list[str]:
    """The full backups whose chains the policy lets go: neither among the newest
    `keep_last` chains nor with a backup newer than `keep_days` days. No policy keeps
    everything; a chain with a running backup is always kept."""
    if keep_last is None and keep_days is None:
        return []
    ordered = sorted(chains(backups).items(), key=lambda kv: kv[1][0].created_at, reverse=True)
    doomed = []
    for rank, (full_id, chain) in enumerate(ordered):
        newest = max(b.created_at for b in chain)
        kept = (keep_last is not None and rank < keep_last) or \
               (keep_days is not None and newest >= now - timedelta(days=keep_days)) or \
               any(b.status in RUNNING for b in chain)
        if not kept:
            doomed.append(full_id)
    return doomed
