"""Epoch fencing: every command carries the replica set's epoch; an agent never
obeys a command older than the newest epoch it has seen."""
from __future__ import annotations

from pathlib import Path


class Fenced(Exception):
    pass


class EpochGuard:
    def __init__(self, path: Path):
        self.path = path

    @property
    def current(self) -> int:
        try:
            return int(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return 0

    def admit(self, epoch: int) -> None:
        if epoch < self.current:
            raise Fenced(f"command epoch {epoch} is older than this agent's epoch {self.current}")
        if epoch > self.current:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(str(epoch))
            tmp.replace(self.path)
