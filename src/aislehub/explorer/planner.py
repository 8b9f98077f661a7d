"""Explorer queries as one DuckDB statement each.

Every statement has the same four steps, so the split/sort/limit logic is written once:

1. ``part``: the metric's rows in range and scope, each with its split key and bucket
   (not grouped: every later step aggregates the partial columns again). From
   ``telemetry_1m`` (count, sum, min, max per device, field and minute) when the grain is
   whole minutes and the aggregation is one of avg/min/max/sum/count; from ``telemetry_num``
   otherwise (sub-minute grains, percentiles, raw charts);
2. ``top``: the split keys ranked by the aggregate over the whole range, highest or lowest
   first, ``limit`` of them kept;
3. the series: each kept key, and every other key folded into one ``other`` series (key
   NULL), aggregated from the partials, so an average of "other" is the average of its
   points, not of its members' averages;
4. beside the points, in the same GROUP BY (grouping sets), each series' total (the
   legend), and how many keys "other" holds (counted while ranking).

Rows come out long: ``(kind, series, t, value)``, ``t`` in epoch milliseconds, with kind
``p`` (point), ``t`` (the total of a kept key, or of "other" when the series is NULL) or
``n`` (keys folded into other). Raw charts keep, per series and pixel bucket, the lowest
and the highest point with their own timestamps (min/max downsampling), so a spike
narrower than a pixel is still drawn.

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
    if rollup and query.grain == timedelta(minutes=1):
        bucket_expr = "r.minute"  # the rollup's own bucket
    else:
        params.append(query.grain)
        bucket_expr = f"time_bucket(${len(params)}, {time_col}, TIMESTAMP '{ORIGIN}')"
    # No GROUP BY here: the steps after it aggregate the partial columns again.
    if query.aggregation in _PERCENTILES:
        agg = f"quantile_cont(v, {_PERCENTILES[query.aggregation]})"
        cols = "r.value AS v"
    else:
        agg = _PARTIAL[query.aggregation]
        cols = (
            "r.count AS c, r.sum AS s, r.min AS mn, r.max AS mx"
            if rollup
            else "1 AS c, r.value AS s, r.value AS mn, r.value AS mx"
        )
    part = f"SELECT {key} AS key, {bucket_expr} AS t, {cols} {source}"
    sql = _assemble(part, agg, agg, limit, order, "t", None)
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
        f"WITH part AS ({part}), "
        f"top AS (SELECT key, total, n FROM (SELECT key, {rank} AS total, "
        "count(*) OVER () AS n FROM part GROUP BY key) "
        f"ORDER BY total {order} NULLS LAST, key LIMIT {limit}), "
        "ranked AS (SELECT part.*, top.key AS series FROM part LEFT JOIN top USING (key))"
    )
    if mode is None:  # aggregated series and, in the same pass, each series' total
        body = (
            f"SELECT CASE WHEN grouping({t}) = 1 THEN 't' ELSE 'p' END, series, "
            f"epoch_ms({t}), {agg} "
            f"FROM ranked GROUP BY GROUPING SETS ((series, {t}), (series))"
        )
    else:
        if mode == "plain":  # every raw point
            points = f"SELECT 'p', series, epoch_ms({t}), value FROM ranked"
        else:  # min/max per pixel bucket
            head += f", b AS ({mode})"
            points = (
                "SELECT 'p', series, epoch_ms(t0), v0 FROM b UNION ALL "
                "SELECT 'p', series, epoch_ms(t1), v1 FROM b WHERE t1 <> t0"
            )
        body = f"{points} UNION ALL SELECT 't', series, NULL, {rank} FROM ranked GROUP BY series"
    return f"{head} {body} UNION ALL SELECT 'n', NULL, NULL, max(n) - count(*) FROM top"


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
