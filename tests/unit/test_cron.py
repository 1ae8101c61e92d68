"""plumbing/cron.py: the next firing time of classic cron expressions."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from plumbing.cron import Cron, CronError

T0 = datetime(2026, 11, 30, 10, 17, 42, tzinfo=timezone.utc)  # a Monday


def nxt(expr: str, moment: datetime = T0) -> datetime:
    return Cron.parse(expr).next_after(moment)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_every_minute_is_the_next_whole_minute():
    assert nxt("* * * * *") == at(2026, 11, 30, 10, 18)


def test_steps_ranges_and_lists():
    assert nxt("*/15 * * * *") == at(2026, 11, 30, 10, 30)
    assert nxt("5,40 9-17 * * *") == at(2026, 11, 30, 10, 40)
    assert nxt("0 22 * * mon-fri") == at(2026, 11, 30, 22, 0)


def test_month_and_year_roll_over():
    assert nxt("0 7 1 * *") == at(2026, 12, 1, 7, 0)
    assert nxt("30 2 1 jan *") == at(2027, 1, 1, 2, 30)


def test_day_of_week_names_and_seven_as_sunday():
    assert nxt("0 8 * * sun") == nxt("0 8 * * 7") == at(2026, 12, 6, 8, 0)


def test_restricted_day_of_month_and_week_match_either():
    # the 1st of a month, or any Friday: Friday 4 December comes first
    assert nxt("0 0 1 * 5") == at(2026, 12, 1, 0, 0)
    assert nxt("0 0 15 * 5") == at(2026, 12, 4, 0, 0)


def test_aliases():
    assert nxt("@daily") == at(2026, 12, 1, 0, 0)
    assert nxt("@hourly") == at(2026, 11, 30, 11, 0)


def test_strictly_after_a_firing_time():
    assert nxt("17 10 * * *", at(2026, 11, 30, 10, 17)) == at(2026, 12, 1, 10, 17)


@pytest.mark.parametrize("bad", ["* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *",
                                 "a * * * *", "5-1 * * * *"])
def test_bad_expressions_are_refused_with_the_field_named(bad):
    with pytest.raises(CronError):
        Cron.parse(bad)


def test_an_expression_that_never_fires_says_so():
    with pytest.raises(CronError, match="never fires"):
        nxt("0 0 30 2 *")


def test_six_fields_put_seconds_first():
    assert nxt("*/10 * * * * *") == at(2026, 11, 30, 10, 17, 50)
    assert nxt("0 0 20 * * 1-5") == at(2026, 11, 30, 20, 0)  # weekdays at 20:00
    assert nxt("30 17 10 * * *") == at(2026, 11, 30, 10, 17, 30) + (at(2026, 12, 1, 10, 17) - at(2026, 11, 30, 10, 17))
    assert Cron.parse("0 18 10 * * *").next_after(at(2026, 11, 30, 10, 17, 59)) == at(2026, 11, 30, 10, 18)


def test_a_bad_seconds_field_is_named():
    with pytest.raises(CronError, match="second"):
        Cron.parse("61 * * * * *")
    with pytest.raises(CronError, match="six"):
        Cron.parse("* * * * * * *")
