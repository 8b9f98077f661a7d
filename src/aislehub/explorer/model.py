"""The explorer's query model: what to chart, parsed from JSON and checked once.

JSON form (``POST /api/explorer/query``, the web page's URL, dashboard tiles)::

    {"metric": "temperature" | "component.field",
     "aggregation": "avg" | "min" | "max" | "sum" | "count" | "p50" | "p95" | "p99",
     "scope": {} | {"devices": [...]} | {"deviceGroup": "id"} | {"template": "dtmi:…"},
     "range": "PT24H"                       (back from now)  or  "from"/"to" (ISO 8601),
     "grain": "auto" | "PT1M" | …,          "points": 1000 (chart width in pixels),
     "splitBy": null | "device" | "template" | {"property": "name"} | {"tag": "name"},
     "sort": "highest" | "lowest",          "limit": 10,
     "mode": "aggregate" | "raw",           "downsample": true,
     "loadAnyway": false}

A ``raw`` chart plots points themselves; with ``downsample`` (the default) the planner
keeps the lowest and the highest point of each pixel bucket, so extremes survive and the
browser gets at most two points per pixel per series. ``aggregation`` then only ranks the
series. Without ``downsample``, or with a grain so fine that the answer exceeds the point
budget, the result is a warning the UI offers to "load anyway" (``loadAnyway``): large
queries are never refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aislehub.errors import BadRequest
from aislehub.query.iotc_query import parse_duration

__all__ = [
    "AGGREGATIONS",
    "GRAINS",
    "ExplorerQuery",
    "Scope",
    "Split",
    "auto_grain",
    "parse_explorer_query",
]

Json = dict[str, Any]
Aggregation = Literal["avg", "min", "max", "sum", "count", "p50", "p95", "p99"]
AGGREGATIONS: tuple[Aggregation, ...] = ("avg", "min", "max", "sum", "count", "p50", "p95", "p99")
SPLIT_KINDS = ("device", "template", "property", "tag")
# The grains "auto" picks from: the finest whose bucket count fits the chart width.
_LADDER = (1, 5, 10, 30, 60, 300, 900, 1800, 3600, 10800, 21600, 43200, 86400, 604800)
GRAINS = tuple(timedelta(seconds=s) for s in _LADDER)
MAX_LIMIT = 100  # series drawn besides "other": a legend longer than that is a table
MAX_POINTS = 10_000  # chart width in pixels, at most
MAX_SPAN = timedelta(days=400)
DEFAULT_BUDGET = 200_000  # points sent to a browser before the UI asks first
_METRIC = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}(\.[A-Za-z][A-Za-z0-9_]{0,63})?")


@dataclass(frozen=True, slots=True)
class Scope:
    """Which devices: all of the app's, a list, a device group's members or a template's."""

    devices: tuple[str, ...] | None = None
    group: str | None = None
    template: str | None = None

    def to_json(self) -> Json:
        if self.devices is not None:
            return {"devices": list(self.devices)}
        if self.group is not None:
            return {"deviceGroup": self.group}
        if self.template is not None:
            return {"template": self.template}
        return {}


@dataclass(frozen=True, slots=True)
class Split:
    """A dimension to split by: ``device``, ``template``, or a ``property`` (reported,
    else cloud) or ``tag`` (cloud property) value named ``name``."""

    kind: str
    name: str | None = None

    def to_json(self) -> Json | str:
        return self.kind if self.name is None else {self.kind: self.name}


@dataclass(frozen=True, slots=True)
class ExplorerQuery:
    metric: str
    aggregation: Aggregation
    start: datetime
    end: datetime
    grain: timedelta
    scope: Scope = field(default_factory=Scope)
    split: Split | None = None
    sort: Literal["highest", "lowest"] = "highest"
    limit: int = 10
    points: int = 1000
    mode: Literal["aggregate", "raw"] = "aggregate"
    downsample: bool = True
    load_anyway: bool = False
    grain_auto: bool = True

    @property
    def component(self) -> str | None:
        return self.metric.split(".", 1)[0] if "." in self.metric else None

    @property
    def field_name(self) -> str:
        return self.metric.rsplit(".", 1)[-1]

    def to_json(self) -> Json:
        """The JSON form (what a shareable URL and an export carry)."""
        return {
            "metric": self.metric,
            "aggregation": self.aggregation,
            "scope": self.scope.to_json(),
            "from": _iso(self.start),
            "to": _iso(self.end),
            "grain": "auto" if self.grain_auto else _iso_duration(self.grain),
            "points": self.points,
            "splitBy": None if self.split is None else self.split.to_json(),
            "sort": self.sort,
            "limit": self.limit,
            "mode": self.mode,
            "downsample": self.downsample,
            "loadAnyway": self.load_anyway,
        }


def auto_grain(span: timedelta, points: int) -> timedelta:
    """The finest ladder grain that gives at most ``points`` buckets over ``span``."""
    for grain in GRAINS:
        if span / grain <= points:
            return grain
    return GRAINS[-1]


def parse_explorer_query(body: Any, now: datetime | None = None) -> ExplorerQuery:
    """The checked query, or :class:`BadRequest` naming the first fault."""
    if not isinstance(body, dict):
        raise BadRequest("An explorer query is a JSON object.")
    known = {
        "metric", "aggregation", "scope", "range", "from", "to", "grain", "points",
        "splitBy", "sort", "limit", "mode", "downsample", "loadAnyway",
    }  # fmt: skip
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadRequest(f"Unknown explorer query member(s): {', '.join(unknown)}.")
    metric = body.get("metric")
    if not isinstance(metric, str) or not _METRIC.fullmatch(metric):
        raise BadRequest("'metric' must name a telemetry field: 'field' or 'component.field'.")
    aggregation = body.get("aggregation", "avg")
    if aggregation not in AGGREGATIONS:
        raise BadRequest(f"'aggregation' must be one of {', '.join(AGGREGATIONS)}.")
    start, end = _time_range(body, now or datetime.now(UTC))
    points = _int(body, "points", 1000, 1, MAX_POINTS)
    grain, grain_auto = _grain(body.get("grain", "auto"), end - start, points)
    mode = body.get("mode", "aggregate")
    if mode not in ("aggregate", "raw"):
        raise BadRequest("'mode' must be 'aggregate' or 'raw'.")
    sort = body.get("sort", "highest")
    if sort not in ("highest", "lowest"):
        raise BadRequest("'sort' must be 'highest' or 'lowest'.")
    return ExplorerQuery(
        metric=metric,
        aggregation=aggregation,
        start=start,
        end=end,
        grain=grain,
        scope=_scope(body.get("scope") or {}),
        split=_split(body.get("splitBy")),
        sort=sort,
        limit=_int(body, "limit", 10, 1, MAX_LIMIT),
        points=points,
        mode=mode,
        downsample=_bool(body, "downsample", True),
        load_anyway=_bool(body, "loadAnyway", False),
        grain_auto=grain_auto,
    )


def _time_range(body: Json, now: datetime) -> tuple[datetime, datetime]:
    if "range" in body:
        if "from" in body:
            raise BadRequest("Give either 'range' or 'from'/'to', not both.")
        span = _duration(body["range"], "range")
        end = _timestamp(body["to"], "to") if "to" in body else now
        start = end - span
    elif "from" in body:
        start = _timestamp(body["from"], "from")
        end = _timestamp(body["to"], "to") if "to" in body else now
    else:
        start, end = now - timedelta(hours=1), now
    if end <= start:
        raise BadRequest("'to' must be after 'from'.")
    if end - start > MAX_SPAN:
        raise BadRequest(f"A query spans at most {MAX_SPAN.days} days.")
    return start, end


def _grain(value: Any, span: timedelta, points: int) -> tuple[timedelta, bool]:
    if value in (None, "auto"):
        return auto_grain(span, points), True
    grain = _duration(value, "grain")
    if grain < timedelta(seconds=1):
        raise BadRequest("'grain' is at least PT1S.")
    return min(grain, timedelta(days=7)), False


def _duration(value: Any, name: str) -> timedelta:
    parsed = parse_duration(value) if isinstance(value, str) else None
    if parsed is None or parsed.months or parsed.micros <= 0:
        raise BadRequest(f"'{name}' must be an ISO 8601 duration in days or less, e.g. PT1H.")
    return parsed.fixed


def _timestamp(value: Any, name: str) -> datetime:
    try:
        ts = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        ts = None
    if ts is None:
        raise BadRequest(f"'{name}' must be an ISO 8601 date and time.")
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _scope(value: Any) -> Scope:
    if not isinstance(value, dict) or len(value) > 1:
        raise BadRequest("'scope' names at most one of 'devices', 'deviceGroup', 'template'.")
    if "devices" in value:
        ids = value["devices"]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not ids:
            raise BadRequest("'scope.devices' is a non-empty list of device ids.")
        return Scope(devices=tuple(ids[:10_000]))
    for key, attr in (("deviceGroup", "group"), ("template", "template")):
        if key in value:
            if not isinstance(value[key], str) or not value[key]:
                raise BadRequest(f"'scope.{key}' is an id.")
            return Scope(**{attr: value[key]})
    if value:
        raise BadRequest("'scope' names at most one of 'devices', 'deviceGroup', 'template'.")
    return Scope()


def _split(value: Any) -> Split | None:
    if value is None or value == "none":
        return None
    if value in ("device", "template"):
        return Split(value)
    if isinstance(value, dict) and len(value) == 1:
        ((kind, name),) = value.items()
        if kind in ("property", "tag") and isinstance(name, str) and name:
            return Split(kind, name)
    raise BadRequest("'splitBy' is 'device', 'template', {\"property\": name} or {\"tag\": name}.")


def _int(body: Json, name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"'{name}' is an integer from {low} to {high}.")
    return value


def _bool(body: Json, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise BadRequest(f"'{name}' is true or false.")
    return value


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _iso_duration(grain: timedelta) -> str:
    seconds = int(grain.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    time += f"{secs}S" if secs else ""
    return text + ("T" + time if time else "") if text + time != "P" else "PT0S"
