"""Text formats of the temporal primitives (v2/v3 §Primitive schema: ISO 8601 per RFC 3339).

``date``     full-date ``2024-02-29``
``time``     partial-time ``13:45:00.250`` with an optional offset (``Z``, ``+01:00``)
``dateTime`` date-time ``2024-02-29T13:45:00Z``: RFC 3339 §5.6 requires the offset
``duration`` ISO 8601 duration ``P1DT2H``, ``PT0.5S``, ``P3W``
"""

from __future__ import annotations

import calendar
import re

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_OFFSET = r"(?:[Zz]|[+-](\d{2}):(\d{2}))"
_TIME = re.compile(rf"^(\d{{2}}):(\d{{2}}):(\d{{2}})(?:\.\d+)?({_OFFSET})?$")
_NUMBER = r"\d+(?:[.,]\d+)?"
_DURATION = re.compile(
    rf"^P(?!$)(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?=\d)(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?$"
)


def is_date(text: str) -> bool:
    match = _DATE.match(text)
    if match is None:
        return False
    year, month, day = (int(part) for part in match.groups())
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def is_time(text: str, *, offset_required: bool = False) -> bool:
    match = _TIME.match(text)
    if match is None:
        return False
    hour, minute, second = (int(part) for part in match.groups()[:3])
    zone, zone_hour, zone_minute = match.group(4), match.group(5), match.group(6)
    if offset_required and zone is None:
        return False
    if zone_hour is not None and (int(zone_hour) > 23 or int(zone_minute) > 59):
        return False
    return hour <= 23 and minute <= 59 and second <= 60  # RFC 3339 §5.7: leap second 60


def is_date_time(text: str) -> bool:
    date, separator, time = text[:10], text[10:11], text[11:]
    return separator in ("T", "t") and is_date(date) and is_time(time, offset_required=True)


def is_duration(text: str) -> bool:
    return _DURATION.match(text) is not None
