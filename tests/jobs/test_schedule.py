"""When scheduled jobs fire (contract §2.12), as pure functions of an injected time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from aislehub.errors import BadRequest
from aislehub.jobs.schedule import Schedule, add_months

START = datetime(2030, 1, 31, 9, 0, tzinfo=UTC)


def at(days: float) -> datetime:
    return START + timedelta(days=days)


def test_once() -> None:
    once = Schedule(START)
    assert once.occurrence(0) == START and once.occurrence(1) is None
    assert once.due(0, at(-0.01)) is None
    assert once.due(0, START) == (0, 1)
    assert once.due(1, at(30)) is None


def test_daily_and_weekly_steps() -> None:
    assert Schedule(START, "daily").occurrence(3) == at(3)
    assert Schedule(START, "weekly").occurrence(2) == at(14)


def test_monthly_clamps_to_the_month_end() -> None:
    monthly = Schedule(START, "monthly")
    assert monthly.occurrence(1) == datetime(2030, 2, 28, 9, tzinfo=UTC)
    assert monthly.occurrence(2) == datetime(2030, 3, 31, 9, tzinfo=UTC)
    assert add_months(datetime(2031, 12, 15, tzinfo=UTC), 2) == datetime(2032, 2, 15, tzinfo=UTC)


def test_end_after_occurrences() -> None:
    three = Schedule(START, "daily", end_occurrences=3)
    assert three.occurrence(2) == at(2) and three.occurrence(3) is None


def test_end_date_is_inclusive() -> None:
    until = Schedule(START, "daily", end_date=date(2030, 2, 2))
    assert until.occurrence(2) == at(2)  # Feb 2nd, 09:00
    assert until.occurrence(3) is None


def test_missed_occurrences_fire_once_as_the_latest() -> None:
    daily = Schedule(START, "daily")
    assert daily.due(0, at(3.5)) == (3, 4)  # occurrences 0..3 were due: fire #3, runs = 4
    assert daily.due(4, at(3.5)) is None
    assert daily.due(4, at(4)) == (4, 5)
    capped = Schedule(START, "daily", end_occurrences=2)
    assert capped.due(0, at(10)) == (1, 2)
    assert capped.due(2, at(10)) is None


def test_parse_and_render() -> None:
    raw = {
        "start": "2030-01-31T10:00:00+01:00",
        "recurrence": "weekly",
        "end": {"type": "date", "date": "2030-06-30"},
    }
    parsed = Schedule.parse(raw)
    assert parsed.start == START and parsed.end_date == date(2030, 6, 30)
    assert parsed.to_json() == {
        "start": "2030-01-31T09:00:00Z",
        "recurrence": "weekly",
        "end": {"type": "date", "date": "2030-06-30"},
    }
    naive = Schedule.parse({"start": "2030-01-31T09:00:00"})
    assert naive.start == START and naive.to_json() == {"start": "2030-01-31T09:00:00Z"}


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        {"start": "soon"},
        {"start": "2030-01-01T00:00:00Z", "recurrence": "yearly"},
        {"start": "2030-01-01T00:00:00Z", "end": {"type": "date"}},
        {"start": "2030-01-01T00:00:00Z", "end": {"type": "occurrences", "occurrences": 1000}},
        {"start": "2030-01-01T00:00:00Z", "end": {"type": "never"}},
    ],
)
def test_malformed_schedules(raw: object) -> None:
    with pytest.raises(BadRequest):
        Schedule.parse(raw)
