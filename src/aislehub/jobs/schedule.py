"""``JobSchedule`` (contract §2.12): when a scheduled job fires, as pure functions of time.

Occurrence *n* (from 0) is ``start`` plus *n* days (``daily``), weeks (``weekly``) or
calendar months (``monthly``; the day is clamped to the month's length, so a schedule
starting on the 31st fires on the last day of shorter months). Without ``recurrence``
only occurrence 0 exists. ``end`` stops the series: ``{"type": "date", "date": D}`` keeps
the occurrences on or before day D (UTC); ``{"type": "occurrences", "occurrences": K}``
keeps the first K.

A schedule that was due several times while no server ran fires once, for its latest
missed occurrence; the missed ones count as occurrences (``runs``) all the same.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aislehub.errors import BadRequest
from aislehub.jobs.model import describe

Json = dict[str, Any]
_STEP = {"daily": timedelta(days=1), "weekly": timedelta(weeks=1)}


class _EndBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["date", "occurrences"]
    date: dt.date | None = None
    occurrences: Annotated[int, Field(ge=1, le=999)] | None = None


class _ScheduleBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    start: datetime
    recurrence: Literal["daily", "weekly", "monthly"] | None = None
    end: _EndBody | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    start: datetime
    recurrence: str | None = None
    end_date: date | None = None
    end_occurrences: int | None = None

    @classmethod
    def parse(cls, raw: Any) -> Schedule:
        """From a request's ``schedule``; a malformed one is a 400."""
        try:
            body = _ScheduleBody.model_validate(raw)
        except ValidationError as exc:
            raise BadRequest(describe(exc).replace("Invalid job", "Invalid schedule")) from None
        start = body.start if body.start.tzinfo else body.start.replace(tzinfo=UTC)
        end = body.end
        if end is not None and end.type == "date" and end.date is None:
            raise BadRequest("Invalid schedule: end.date is required for an end of type date.")
        if end is not None and end.type == "occurrences" and end.occurrences is None:
            raise BadRequest("Invalid schedule: end.occurrences is required (1 to 999).")
        return cls(
            start.astimezone(UTC),
            body.recurrence,
            end.date if end is not None and end.type == "date" else None,
            end.occurrences if end is not None and end.type == "occurrences" else None,
        )

    def to_json(self) -> Json:
        view: Json = {"start": self.start.isoformat().replace("+00:00", "Z")}
        if self.recurrence is not None:
            view["recurrence"] = self.recurrence
        if self.end_date is not None:
            view["end"] = {"type": "date", "date": self.end_date.isoformat()}
        elif self.end_occurrences is not None:
            view["end"] = {"type": "occurrences", "occurrences": self.end_occurrences}
        return view

    def occurrence(self, n: int) -> datetime | None:
        """The time of occurrence ``n`` (0-based), or None if the series has ended by then."""
        if n > 0 and self.recurrence is None:
            return None
        if self.end_occurrences is not None and n >= self.end_occurrences:
            return None
        when = self._nth(n)
        if self.end_date is not None and when.date() > self.end_date:
            return None
        return when

    def _nth(self, n: int) -> datetime:
        if self.recurrence == "monthly":
            return add_months(self.start, n)
        return self.start + _STEP.get(self.recurrence or "daily", timedelta(0)) * n

    def due(self, runs: int, now: datetime) -> tuple[int, int] | None:
        """If an occurrence at or after index ``runs`` is due at ``now``: (index of the
        latest due one, the new ``runs`` count); None when nothing is due."""
        first = self.occurrence(runs)
        if first is None or first > now:
            return None
        latest = runs
        while (following := self.occurrence(latest + 1)) is not None and following <= now:
            latest += 1
        return latest, latest + 1


def add_months(when: datetime, months: int) -> datetime:
    index = when.month - 1 + months
    year, month = when.year + index // 12, index % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)
