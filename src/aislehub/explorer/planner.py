"""Explorer queries as one DuckDB statement each.

Every statement has the same steps, so the split/sort/limit logic is written once, and
works on partial aggregates (count ``c``, sum ``s``, min ``mn``, max ``mx``) so that no
step reads more than it needs:

1. ``part``: the metric's rows in range and scope, each with its split key and bucket.
   From ``telemetry_1m`` (count, sum, min, max per device, field and minute) when the
   grain is whole minutes and the aggregation is one of avg/min/max/sum/count, inlined
   into each step below (so the kept keys reach the rollup's scan as a filter); from
   ``telemetry_num`` otherwise, grouped once into partials per key and bucket and
   materialized. A raw chart's ``part`` is its min/max pass: per key and pixel bucket the
   lowest and the highest point with their own timestamps (so a spike narrower than a
   pixel is still drawn), and count and sum for the ranking;
2. ``keys``: each split key's total over the whole range, from the partials; ``top``: the
   keys ranked by it, highest or lowest first, ``limit`` of them kept with their rank;
3. the series: each kept key's points, and every other key folded into one ``other``
   series, its partials combined per bucket, so an average of "other" is the average of
   its points, not of its members' averages (and its extremes the extremes of theirs);
4. beside the points, each series' total (the legend; "other"'s from its combined
   partials) and how many keys "other" holds.

Percentiles cannot be combined from partials: they rank on the rows themselves
(``_assemble``), as does a raw chart without downsampling.

Rows come out as ``(i, t, value, name)``, ``t`` in epoch milliseconds: a point of series
``i`` (its rank from 1, 0 for "other"); without ``t``, the total of series ``i`` and, for a
kept key, its name; ``i`` -1, the number of keys folded into "other".

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
    percentile = query.aggregation in _PERCENTILES
    if query.mode == "raw":
        width = max((end - start) / query.points, timedelta(milliseconds=1))
        pixel = "NULL"  # every point, without downsampling
        if query.downsample:
            params.append(int(width / timedelta(microseconds=1)))
            pixel = f"(epoch_us(r.ts) - epoch_us($4)) // ${len(params)}"
        if not query.downsample or percentile:
            sql = _raw_rows(query, key, source, limit, order, pixel)
        else:
            part = (
                f"SELECT {key} AS key, {pixel} AS t, arg_min(r.ts, r.value) AS t0, "
                "min(r.value) AS mn, arg_max(r.ts, r.value) AS t1, max(r.value) AS mx, "
                f"count(r.value) AS c, sum(r.value) AS s {source} GROUP BY ALL"
            )
            sql = _folded(part, True, query.aggregation, limit, order, extremes=True)
        count = f"SELECT count(*) {source}"
        return Plan(sql, params, "raw", start, end, width, count, params[:scoped])
    if rollup and query.grain == timedelta(minutes=1):
        bucket = "r.minute"  # the rollup's own bucket
    else:
        params.append(query.grain)
        bucket = f"time_bucket(${len(params)}, {time_col}, TIMESTAMP '{ORIGIN}')"
    if percentile:
        part = f"SELECT {key} AS key, {bucket} AS t, r.value {source}"
        agg = f"quantile_cont(value, {_PERCENTILES[query.aggregation]})"
        points = f"SELECT i, epoch_ms(t), {agg}, NULL FROM ranked GROUP BY i, t"
        sql = _assemble(part, agg, order, limit, points)
    elif rollup:  # read where it lies: the steps after it aggregate the partials again
        cols = ", ".join(f"r.{_ROLLUP_COLUMNS[c]} AS {c}" for c in _NEEDS[query.aggregation])
        part = f"SELECT {key} AS key, {bucket} AS t, {cols} {source}"
        sql = _folded(part, False, query.aggregation, limit, order)
    else:  # raw points grouped once into partials, read by every later step
        cols = ", ".join(f"{_RAW_PARTIALS[c]} AS {c}" for c in _NEEDS[query.aggregation])
        part = f"SELECT {key} AS key, {bucket} AS t, {cols} {source} GROUP BY ALL"
        sql = _folded(part, True, query.aggregation, limit, order)
    return Plan(sql, params, "rollup" if rollup else "raw", start, end, query.grain)


# The partial columns each aggregation reads, where the rollup keeps them, how raw points
# give them, and the aggregation's value from one row of combined partials.
_NEEDS = {"avg": ("c", "s"), "min": ("mn",), "max": ("mx",), "sum": ("s",), "count": ("c",)}
_ROLLUP_COLUMNS = {"c": "count", "s": "sum", "mn": "min", "mx": "max"}
_RAW_PARTIALS = {
    "c": "count(r.value)",
    "s": "sum(r.value)",
    "mn": "min(r.value)",
    "mx": "max(r.value)",
}
_COMBINE = {"c": "sum(c)", "s": "sum(s)", "mn": "min(mn)", "mx": "max(mx)"}
_FINAL = {"avg": "s / c", "min": "mn", "max": "mx", "sum": "s", "count": "c::DOUBLE"}


def _folded(
    part: str, materialized: bool, aggregation: str, limit: str, order: str, extremes: bool = False
) -> str:
    """Split, rank, limit and fold from partial aggregates, so the source is read once
    (``materialized``: raw points grouped into partials first) or only where each step
    needs it (rollup rows, inlined so the kept keys' filter reaches the scan).

    ``part`` has one row per key and bucket ``t`` or more, with the partial columns the
    aggregation needs (``c``, ``s``, ``mn``, ``mx``); with ``extremes`` (a raw chart's
    min/max per pixel) one row per key and pixel, with ``t0``/``t1`` the times of its
    lowest and highest point. Steps: ``keys``, each key's total; ``top``, the kept keys
    and their ranks; the kept keys' points; ``other``, every other key's partials combined
    per bucket, its points and, from those, its total; the number of keys folded into it.
    """
    rank = _PARTIAL[aggregation]
    combine = ", ".join(f"{_COMBINE[c]} AS {c}" for c in _NEEDS[aggregation])
    ctes = [
        f"part AS {'MATERIALIZED' if materialized else 'NOT MATERIALIZED'} ({part})",
        f"keys AS (SELECT key, {rank} AS total FROM part GROUP BY key)",
        _top(order, limit),
    ]
    if extremes:
        combine = (
            "arg_min(t0, mn) AS t0, min(mn) AS mn, arg_max(t1, mx) AS t1, max(mx) AS mx, "
            "sum(c) AS c, sum(s) AS s"
        )
        points = _EXTREMES
    else:
        points = (
            f"SELECT i, epoch_ms(t), {rank}, NULL FROM part JOIN top USING (key) GROUP BY i, t "
            f"UNION ALL SELECT 0, epoch_ms(t), {_FINAL[aggregation]}, NULL FROM other"
        )
    ctes.append(
        f"other AS (SELECT t, {combine} FROM part WHERE key NOT IN (SELECT key FROM top) "
        "GROUP BY t)"
    )
    if extremes:
        ctes.append(
            "b AS (SELECT i, t0, mn, t1, mx FROM part JOIN top USING (key) "
            "UNION ALL SELECT 0, t0, mn, t1, mx FROM other)"
        )
    return (
        f"WITH {', '.join(ctes)} {points} "
        f"UNION ALL SELECT 0, NULL, {rank}, NULL FROM other {_TOTALS}"
    )


def _top(order: str, limit: str) -> str:
    return (
        f"top AS (SELECT key, total, row_number() OVER (ORDER BY total {order} NULLS LAST, "
        f"key) AS i FROM keys QUALIFY i <= {limit})"
    )


# The lowest and the highest point of each series and pixel (``b``), at their own times.
_EXTREMES = (
    "SELECT i, epoch_ms(t0), mn, NULL FROM b WHERE t0 IS NOT NULL "
    "UNION ALL SELECT i, epoch_ms(t1), mx, NULL FROM b WHERE t1 <> t0"
)
# The kept keys' totals and names, and the number of keys folded into "other".
_TOTALS = (
    "UNION ALL SELECT i, NULL, total, key FROM top "
    "UNION ALL SELECT -1, NULL, count(*) - (SELECT count(*) FROM top), NULL FROM keys"
)


def _raw_rows(
    query: ExplorerQuery,
    key: str,
    source: str,
    limit: str,
    order: str,
    pixel: str,
) -> str:
    """A raw chart ranked by a percentile, or without downsampling."""
    part = f"SELECT {key} AS key, r.ts AS t, {pixel} AS px, r.value {source}"
    rank = (
        f"quantile_cont(value, {_PERCENTILES[query.aggregation]})"
        if query.aggregation in _PERCENTILES
        else _RAW[query.aggregation]
    )
    if not query.downsample:  # every point
        return _assemble(part, rank, order, limit, "SELECT i, epoch_ms(t), value, NULL FROM ranked")
    pixels = (
        "b AS (SELECT i, arg_min(t, value) AS t0, min(value) AS mn, arg_max(t, value) AS t1, "
        "max(value) AS mx FROM ranked GROUP BY i, px)"
    )
    return _assemble(part, rank, order, limit, _EXTREMES, pixels)


def _assemble(
    part: str, rank: str, order: str, limit: str, points: str, pixels: str | None = None
) -> str:
    """The plain form, for percentiles (not combined from partials): ranked on the rows of
    ``part`` themselves; ``points`` reads ``ranked``, those rows with their series ``i``
    (0 for "other"), or ``b``, the ``pixels`` made of them."""
    ctes = [
        f"part AS MATERIALIZED ({part})",
        f"keys AS (SELECT key, {rank} AS total FROM part GROUP BY key)",
        _top(order, limit),
        "ranked AS (SELECT part.*, coalesce(top.i, 0) AS i FROM part LEFT JOIN top USING (key))",
    ]
    if pixels is not None:
        ctes.append(pixels)
    return (
        f"WITH {', '.join(ctes)} {points} "
        f"UNION ALL SELECT 0, NULL, {rank}, NULL FROM ranked WHERE i = 0 {_TOTALS}"
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
