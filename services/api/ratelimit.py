"""Rate limits per project, after Trove's in-memory limiter: N requests a minute
for each verb (and for POSTs on the mgmt routes), counted per API process. A
token bucket per project and limit: a burst of N, refilled at N per minute."""
from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class Limit:
    verb: str
    uri: str
    regex: str      # matched against the path after /v1.0/{project}
    value: int      # requests a minute

    @property
    def details(self) -> str:
        return f"Only {self.value} {self.verb} request(s) can be made to {self.uri} every minute."


def default_limits(per_minute: int) -> list[Limit]:
    return [Limit(verb, "*", ".*", per_minute) for verb in ("POST", "PUT", "PATCH", "DELETE", "GET")] + [
        Limit("POST", "*/mgmt", "^/mgmt", per_minute)]


def from_env() -> "RateLimiter":
    """COFFER_RATE_LIMIT_PER_MINUTE (Trove's 200 by default; 0 turns limiting off)."""
    return RateLimiter(default_limits(int(os.environ.get("COFFER_RATE_LIMIT_PER_MINUTE", "200"))))


class RateLimiter:
    def __init__(self, limits: list[Limit], clock=time.monotonic):
        self.limits = [limit for limit in limits if limit.value > 0]
        self.clock = clock
        self._buckets: dict[tuple[str, int], tuple[float, float]] = {}  # -> (tokens, when)
        # per verb, the limits that may apply (index, compiled regex): a request tries only those
        self._by_verb: dict[str, list[tuple[int, re.Pattern]]] = {}
        for i, limit in enumerate(self.limits):
            self._by_verb.setdefault(limit.verb, []).append((i, re.compile(limit.regex)))

    def _level(self, project: str, index: int, now: float) -> float:
        limit = self.limits[index]
        tokens, when = self._buckets.get((project, index), (float(limit.value), now))
        return min(float(limit.value), tokens + (now - when) * limit.value / 60.0)

    def check(self, project: str, verb: str, path: str) -> tuple[int, Limit] | None:
        """None when the request may go (it is counted), else (seconds to wait, the limit passed)."""
        now = self.clock()
        applying = [i for i, regex in self._by_verb.get(verb, ()) if regex.match(path)]
        levels = {i: self._level(project, i, now) for i in applying}
        short = [(math.ceil((1 - levels[i]) * 60.0 / self.limits[i].value), i) for i in applying if levels[i] < 1]
        if short:
            wait, index = max(short)
            return max(wait, 1), self.limits[index]
        for i in applying:
            self._buckets[(project, i)] = (levels[i] - 1, now)
        return None

    def status(self, project: str) -> list[dict]:
        """Trove's rate entries of GET /limits."""
        now, wall = self.clock(), time.time()
        out = []
        for i, limit in enumerate(self.limits):
            level = self._level(project, i, now)
            wait = 0.0 if level >= 1 else (1 - level) * 60.0 / limit.value
            out.append({"verb": limit.verb, "uri": limit.uri, "regex": limit.regex, "value": limit.value,
                        "remaining": int(level), "unit": "MINUTE",
                        "nextAvailable": datetime.fromtimestamp(wall + wait, timezone.utc).strftime(
                            "%Y-%m-%dT%H:%M:%SZ")})
        return out
