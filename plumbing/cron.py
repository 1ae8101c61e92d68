"""Cron expressions (the five classic fields, UTC, or six with seconds first as in
Quartz/Spring: "0 0 20 * * 1-5"): parse once, ask for the next time one fires. Used
by every schedule Coffer keeps (backups, stop/start)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

SECONDS = ("second", 0, 59)
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))
NAMES = {"month": ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
         "day of week": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]}
ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
SEARCH_LIMIT = timedelta(days=366 * 5)  # e.g. "0 0 30 2 *" never fires


class CronError(ValueError):
    pass


def _number(text: str, field: str, low: int) -> int:
    names = NAMES.get(field)
    if names and text.lower() in names:
        return names.index(text.lower()) + (1 if field == "month" else 0)
    if not text.isdigit():
        raise CronError(f"{field}: {text!r} is not a number")
    value = int(text)
    return 0 if field == "day of week" and value == 7 else value  # 7 is Sunday too


def _field(text: str, field: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise CronError(f"{field}: bad step in {part!r}")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            start, end = _number(a, field, low), _number(b, field, low)
        else:
            start = _number(body, field, low)
            end = high if step else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise CronError(f"{field}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step or 1))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool       # day of month was *
    any_weekday: bool   # day of week was *
    seconds: frozenset[int] = frozenset({0})  # a five-field expression fires at second 0

    @classmethod
    def parse(cls, expression: str) -> "Cron":
        text = ALIASES.get(expression.strip().lower(), expression.strip())
        parts = text.split()
        if len(parts) not in (5, 6):
            raise CronError(f"{expression!r}: want five fields (minute hour day-of-month month day-of-week), "
                            "or six with seconds first")
        seconds = _field(parts.pop(0), *SECONDS) if len(parts) == 6 else frozenset({0})
        sets = [_field(p, name, low, high) for p, (name, low, high) in zip(parts, FIELDS)]
        return cls(expression, *sets, any_day=parts[2] == "*", any_weekday=parts[4] == "*", seconds=seconds)

    def _day_matches(self, moment: datetime) -> bool:
        in_month = moment.day in self.days
        in_week = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # cron: when one is restricted, it alone counts
            return in_month and in_week
        return in_month or in_week            # both restricted: either matches

    def next_after(self, moment: datetime) -> datetime:
        """The first time strictly after `moment` (same zone) when the expression fires."""
        t = moment.replace(microsecond=0) + timedelta(seconds=1)
        limit = moment + SEARCH_LIMIT
        while t <= limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.seconds:
                t += timedelta(seconds=1)
            else:
                return t
        raise CronError(f"{self.expression!r} never fires")
