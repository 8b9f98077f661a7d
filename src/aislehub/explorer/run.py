"""Run an explorer query: resolve its scope and split, run the plan, align the columns.

The result is columnar, ready for uPlot: one ``time`` column (epoch milliseconds) and one
value column per series, ``None`` where a series has no point at that time. Series come
in rank order, "other" last. A query whose answer would exceed the point budget comes
back without points and with a ``warning`` unless it says ``loadAnyway``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aislehub.errors import NotFound
from aislehub.explorer.model import DEFAULT_BUDGET, ExplorerQuery
from aislehub.explorer.planner import (
    NONE_KEY,
    Plan,
    ResolvedScope,
    ResolvedSplit,
    plan_explorer_query,
)
from aislehub.query.device_filter import parse_device_filter
from aislehub.store.device_filter_sql import filter_clause
from aislehub.store.metadata import MetadataStore

__all__ = ["OTHER", "ExplorerResult", "Series", "SqlReader", "run_explorer_query"]

Json = dict[str, Any]
OTHER = "other"
_PAGE = 1000


class SqlReader(Protocol):
    """A telemetry store's statement runner; its ``dialect`` attribute ("duckdb", the
    default, or "postgres") says which SQL the planner writes for it."""

    def query(self, sql: str, params: list[Any]) -> tuple[list[str], list[tuple[Any, ...]]]: ...


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    total: float | None  # the aggregate over the whole range: the sort key
    members: int = 1  # keys folded into it ("other" holds many)
    other: bool = False


@dataclass(slots=True)
class ExplorerResult:
    query: ExplorerQuery
    source: str
    start: datetime
    end: datetime
    bucket: timedelta
    series: list[Series] = field(default_factory=list)
    time: list[int] = field(default_factory=list)  # epoch ms
    values: list[list[float | None]] = field(default_factory=list)  # one list per series
    warning: Json | None = None

    @property
    def points(self) -> int:
        return sum(v is not None for column in self.values for v in column)

    def to_json(self) -> Json:
        return {
            "query": self.query.to_json(),
            "from": _iso(self.start),
            "to": _iso(self.end),
            "grain": int(self.bucket / timedelta(milliseconds=1)),
            "source": self.source,
            "series": [
                {"name": s.name, "total": s.total, "members": s.members, "other": s.other}
                for s in self.series
            ],
            "time": self.time,
            "values": self.values,
            "points": self.points,
            "warning": self.warning,
        }


def run_explorer_query(
    query: ExplorerQuery,
    app_id: str,
    store: MetadataStore,
    reader: SqlReader,
    budget: int = DEFAULT_BUDGET,
) -> ExplorerResult:
    """Run ``query`` for ``app_id`` (the caller's app, never one from the body)."""
    scope = resolve_scope(query, app_id, store)
    split = resolve_split(query, app_id, store, scope)
    dialect = getattr(reader, "dialect", "duckdb")
    hourly = "1h" in getattr(reader, "rollups", ())
    plan = plan_explorer_query(query, app_id, scope, split, dialect, hourly)
    result = ExplorerResult(query, plan.source, plan.start, plan.end, plan.bucket)
    estimate = _estimate(query, plan, reader)
    if estimate > budget and not query.load_anyway:
        result.warning = {
            "code": "PointBudgetExceeded",
            "message": f"About {estimate:,} points would be drawn (budget {budget:,}).",
            "points": estimate,
            "budget": budget,
        }
        return result
    _, rows = reader.query(plan.sql, plan.params)
    _shape(result, rows, query)
    return result


def resolve_scope(query: ExplorerQuery, app_id: str, store: MetadataStore) -> ResolvedScope:
    scope = query.scope
    if scope.devices is not None:
        return ResolvedScope(devices=scope.devices)
    if scope.template is not None:
        return ResolvedScope(template=scope.template)
    if scope.group is not None:
        group = store.groups.get(app_id, scope.group)
        if group is None:
            raise NotFound(f"Device group {scope.group!r} was not found.")
        where = filter_clause(parse_device_filter(group.filter))
        return ResolvedScope(devices=tuple(_device_ids(store, app_id, where)))
    return ResolvedScope()


def resolve_split(
    query: ExplorerQuery, app_id: str, store: MetadataStore, scope: ResolvedScope
) -> ResolvedSplit:
    split = query.split
    if split is None:
        return ResolvedSplit("none")
    if split.kind in ("device", "template"):
        return ResolvedSplit(split.kind)
    ids = list(scope.devices) if scope.devices is not None else _device_ids(store, app_id, None)
    keys = [
        _property_key(store, app_id, device_id, split.kind, split.name or "") for device_id in ids
    ]
    return ResolvedSplit("map", tuple(ids), tuple(keys))


def _device_ids(store: MetadataStore, app_id: str, where: Any) -> list[str]:
    found: list[str] = []
    while True:
        page = store.list_devices(app_id, len(found), _PAGE, where)
        found.extend(d.id for d in page)
        if len(page) < _PAGE:
            return found


def _property_key(store: MetadataStore, app_id: str, device_id: str, kind: str, name: str) -> str:
    value: Any = None
    if kind == "property":
        value = store.get_twin(app_id, device_id).reported.get(name)
        if isinstance(value, dict) and "value" in value and "ac" in value:
            value = value["value"]  # an acknowledged writable property
    if value is None:
        value = store.cloud.get(app_id, device_id).values.get(name)
    if value is None or isinstance(value, dict | list):
        return NONE_KEY
    return str(value).lower() if isinstance(value, bool) else str(value)


def _estimate(query: ExplorerQuery, plan: Plan, reader: SqlReader) -> int:
    """Points the answer would hold, at most; raw points are counted by the store."""
    series = 1 if query.split is None else query.limit + 1
    if query.mode == "aggregate":
        return series * int((plan.end - plan.start) / plan.bucket)
    if query.downsample:
        return series * 2 * query.points
    _, rows = reader.query(plan.count_sql, plan.count_params or [])
    return int(rows[0][0])


def _shape(result: ExplorerResult, rows: Iterable[tuple[Any, ...]], query: ExplorerQuery) -> None:
    """Columns from the plan's rows ``(i, t, value, name)``: a point of series ``i`` (its
    rank from 1, 0 for "other") at ``t``; without ``t``, the series' total, and its name;
    ``i`` -1, the number of keys folded into "other"."""
    points: dict[int, dict[int, float | None]] = {}
    totals: dict[int, tuple[str, float | None]] = {}
    other_total: float | None = None
    other_members = 0
    column: dict[int, float | None] = {}
    current = -2  # the series of the last point: rows come in runs of one series
    for i, t, value, name in rows:
        if t is not None:
            if i != current:
                column = points.setdefault(i, {})
                current = i
            column[t] = value
        elif i > 0:
            totals[i] = (name, value)
        elif i == 0:
            other_total = value
        else:
            other_members = int(value or 0)
    ranks = sorted(totals)
    if query.split is None:
        result.series = [Series(query.metric, totals[i][1]) for i in ranks]
    else:
        result.series = [Series(*totals[i]) for i in ranks]
    if other_members:
        ranks.append(0)
        result.series.append(Series(OTHER, other_total, other_members, other=True))
    result.time = sorted(set().union(*points.values()))
    result.values = [_column(points.get(i, {}), result.time) for i in ranks]


def _column(found: dict[int, float | None], time: list[int]) -> list[float | None]:
    if len(found) == len(time):  # a value at every time: no gaps to fill
        return list(map(found.__getitem__, time))
    return list(map(found.get, time))


def _iso(ts: datetime) -> str:
    return ts.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
