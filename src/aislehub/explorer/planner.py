"""Explorer queries as one DuckDB statement each.

Every statement has the same four steps, so the split/sort/limit logic is written once:

1. ``part``: the metric's rows in range and scope, each with its split key and bucket. From
   ``telemetry_1m`` (count, sum, min, max per device, field and minute) when the grain is
   whole minutes and the aggregation is one of avg/min/max/sum/count; from ``telemetry_num``
   otherwise (sub-minute grains, percentiles, raw charts). Rollup rows are partial (the
   ingest write may add several per minute), so they are summed again here;
2. ``top``: the split keys ranked by the aggregate over the whole range, highest or lowest
   first, ``limit`` of them kept;
3. the series: each kept key, and every other key folded into one ``other`` series (key
   NULL), aggregated from the partials, so an average of "other" is the average of its
   points, not of its members' averages;
4. beside the points, one row per kept key with its total (the legend), the total of
   "other" and how many keys it holds.

Rows come out long: ``(kind, series, t, value)`` with kind ``p`` (point), ``t`` (total of a
kept key), ``o`` (total of other) or ``n`` (keys in other). Raw charts keep, per series
and pixel bucket, the lowest and the highest point with their own timestamps (min/max
downsampling), so a spike narrower than a pixel is still drawn.

The range is widened to whole grains (from the floor of ``start`` to the ceiling of ``end``)
so rollups and raw points cover exactly the same instants. Every value is a numbered
parameter; the app id is always one of them, so no statement reads another app's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aislehub.explorer.model import ExplorerQuery

__all__ = ["ORIGIN", "Plan", "ResolvedScope", "ResolvedSplit", "align", "plan_explorer_query"]

ORIGIN = datetime(2000, 1, 3)  # a Monday at midnight: buckets align to minutes, days, weeks
_PERCENTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
# Aggregates over the partial columns c (count), s (sum), mn (min), mx (max).
_PARTIAL = {
    "avg": "sum(s) / sum(c)",
    "min": "min(mn)",
    "max": "max(mx)",
    "sum": "sum(s)",
    "count": "sum(c)::DOUBLE",
}
_RAW = {
    "avg": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "sum": "sum(value)",
    "count": "count(value)::DOUBLE",
}
NONE_KEY = "(none)"  # the split key of a device without the property or template


@dataclass(frozen=True, slots=True)
class ResolvedScope:
    """The scope as the store can test it: a device list, a template, or everything."""

    devices: tuple[str, ...] | None = None
    template: str | None = None


@dataclass(frozen=True, slots=True)
class ResolvedSplit:
    """``device``/``template`` keys come from the store; ``map`` keys from metadata."""

    kind: str  # "none", "device", "template" or "map"
    devices: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    sql: str
    params: list[object]
    source: str  # "rollup" or "raw"
    start: datetime  # naive UTC, aligned to the grain
    end: datetime
    bucket: timedelta  # the grain, or the pixel width of a raw chart
    count_sql: str = ""  # raw rows in range and scope (the budget check of a raw chart)
    count_params: list[object] | None = None


def align(query: ExplorerQuery) -> tuple[datetime, datetime]:
    """``[start, end)`` widened to whole grains, as naive UTC."""
    start = query.start.replace(tzinfo=None)
    end = query.end.replace(tzinfo=None)
    grain = query.grain
    floor = ORIGIN + ((start - ORIGIN) // grain) * grain
    ceiling = ORIGIN + -((ORIGIN - end) // grain) * grain
    return floor, ceiling


def uses_rollup(query: ExplorerQuery) -> bool:
    return (
        query.mode == "aggregate"
        and query.aggregation not in _PERCENTILES
        and query.grain % timedelta(minutes=1) == timedelta(0)
    )


def plan_explorer_query(
    query: ExplorerQuery, app_id: str, scope: ResolvedScope, split: ResolvedSplit
) -> Plan:
    start, end = align(query)
    params: list[object] = [app_id, query.field_name, query.component, start, end]
    rollup = uses_rollup(query)
    time_col = "r.minute" if rollup else "r.ts"
    source = (
        f"FROM {'telemetry_1m' if rollup else 'telemetry_num'} r{_join(split, params)} "
        "WHERE r.app_id = $1 AND r.name = $2 AND r.component IS NOT DISTINCT FROM $3 "
        f"AND r.module_id IS NULL AND {time_col} >= $4 AND {time_col} < $5"
        f"{_scope(scope, params)}"
    )
    scoped = len(params)  # the parameters the source's WHERE uses
    key = _key(split)
    params.append(query.limit if split.kind != "none" else 1)
    limit = f"${len(params)}"
    order = "DESC" if query.sort == "highest" else "ASC"
    if query.mode == "raw":
        sql, bucket = _raw(query, key, source, time_col, limit, order, params, start, end)
        count = f"SELECT count(*) {source}"
        return Plan(sql, params, "raw", start, end, bucket, count, params[:scoped])
    params.append(query.grain)
    bucket_expr = f"time_bucket(${len(params)}, {time_col}, TIMESTAMP '{ORIGIN}')"
    if query.aggregation in _PERCENTILES:
        agg = f"quantile_cont(v, {_PERCENTILES[query.aggregation]})"
        part = f"SELECT {key} AS key, {bucket_expr} AS t, r.value AS v {source}"
    else:
        agg = _PARTIAL[query.aggregation]
        cols = (
            "sum(r.count) AS c, sum(r.sum) AS s, min(r.min) AS mn, max(r.max) AS mx"
            if rollup
            else "count(r.value) AS c, sum(r.value) AS s, min(r.value) AS mn, max(r.value) AS mx"
        )
        part = f"SELECT {key} AS key, {bucket_expr} AS t, {cols} {source} GROUP BY ALL"
    sql = _assemble(part, agg, agg, limit, order, "t", "v" if "quantile" in agg else None)
    return Plan(sql, params, "rollup" if rollup else "raw", start, end, query.grain)


def _raw(
    query: ExplorerQuery,
    key: str,
    source: str,
    time_col: str,
    limit: str,
    order: str,
    params: list[object],
    start: datetime,
    end: datetime,
) -> tuple[str, timedelta]:
    part = f"SELECT {key} AS key, {time_col} AS ts, r.value {source}"
    rank = (
        f"quantile_cont(value, {_PERCENTILES[query.aggregation]})"
        if query.aggregation in _PERCENTILES
        else _RAW[query.aggregation]
    )
    width = max((end - start) / query.points, timedelta(milliseconds=1))
    if not query.downsample:
        return _assemble(part, rank, "value", limit, order, "ts", "plain"), width
    params.append(int(width / timedelta(microseconds=1)))
    points = (
        "SELECT series, arg_min(ts, value) AS t0, min(value) AS v0, arg_max(ts, value) AS t1, "
        f"max(value) AS v1 FROM ranked GROUP BY series, (epoch_us(ts) - epoch_us($4)) // "
        f"${len(params)}"
    )
    return _assemble(part, rank, "value", limit, order, "ts", points), width


def _assemble(
    part: str, rank: str, agg: str, limit: str, order: str, t: str, mode: str | None
) -> str:
    head = (
        f"WITH part AS MATERIALIZED ({part}), "
        f"top AS (SELECT key, {rank} AS total FROM part GROUP BY key "
        f"ORDER BY total {order} NULLS LAST, key LIMIT {limit}), "
        "ranked AS (SELECT part.*, top.key AS series FROM part LEFT JOIN top USING (key))"
    )
    if mode is None or mode == "v":  # aggregated series
        points = f"SELECT 'p', series, {t}, {agg} FROM ranked GROUP BY series, {t}"
    elif mode == "plain":  # every raw point
        points = f"SELECT 'p', series, {t}, value FROM ranked"
    else:  # min/max per pixel bucket
        head += f", b AS ({mode})"
        points = (
            "SELECT 'p', series, t0, v0 FROM b UNION ALL "
            "SELECT 'p', series, t1, v1 FROM b WHERE t1 <> t0"
        )
    return (
        f"{head} {points} "
        "UNION ALL SELECT 't', key, NULL, total FROM top "
        f"UNION ALL SELECT 'o', NULL, NULL, {rank} FROM part "
        "WHERE key NOT IN (SELECT key FROM top) "
        "UNION ALL SELECT 'n', NULL, NULL, count(DISTINCT key) FROM part "
        "WHERE key NOT IN (SELECT key FROM top)"
    )


def _key(split: ResolvedSplit) -> str:
    if split.kind == "device":
        return "r.device_id"
    if split.kind == "template":
        return f"coalesce(c.template_id, '{NONE_KEY}')"
    if split.kind == "map":
        return f"coalesce(m.key, '{NONE_KEY}')"
    return "''"


def _join(split: ResolvedSplit, params: list[object]) -> str:
    if split.kind == "template":
        return " LEFT JOIN device_catalog c ON c.app_id = r.app_id AND c.device_id = r.device_id"
    if split.kind == "map":
        params.extend([list(split.devices), list(split.keys)])
        n = len(params)
        return (
            f" LEFT JOIN (SELECT unnest(${n - 1}::VARCHAR[]) AS device_id, "
            f"unnest(${n}::VARCHAR[]) AS key) m ON m.device_id = r.device_id"
        )
    return ""


def _scope(scope: ResolvedScope, params: list[object]) -> str:
    if scope.devices is not None:
        params.append(list(scope.devices))
        return f" AND r.device_id IN (SELECT unnest(${len(params)}::VARCHAR[]))"
    if scope.template is not None:
        params.append(scope.template)
        return (
            " AND r.device_id IN (SELECT device_id FROM device_catalog "
            f"WHERE app_id = $1 AND template_id = ${len(params)})"
        )
    return ""
