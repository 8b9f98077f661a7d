"""Explorer queries as one statement each, in the telemetry store's SQL (DuckDB or
PostgreSQL: the pieces that differ are :mod:`aislehub.query.dialect`'s).

Every statement has the same steps, so the split/sort/limit logic is written once, and
works on partial aggregates (count ``c``, sum ``s``, min ``mn``, max ``mx``) so that no
step reads more than it needs:

1. ``part``: the metric's rows in range and scope, each with its split key and bucket.
   From ``telemetry_1m`` (count, sum, min, max per device, field and minute) when the
   grain is whole minutes and the aggregation is one of avg/min/max/sum/count, inlined
   into each step below (so the kept keys reach the rollup's scan as a filter), or from
   ``telemetry_1h`` when the grain is whole hours and the store keeps it (PostgreSQL); from
   ``telemetry_num`` otherwise, grouped once into partials per key and bucket and
   materialized. A raw chart's ``part`` is its min/max pass: per key and pixel bucket the
   lowest and the highest point with their own timestamps (so a spike narrower than a
   pixel is still drawn), and count and sum for the ranking;
2. ``keys``: each split key's total over the whole range, from the partials (with an
   hourly rollup at a minute grain: from its whole hours and the edge minutes, 24 rows a
   key and day instead of 1,440); ``top``: the
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
so rollups and raw points cover exactly the same instants. Every value is a parameter; the
app id is always one of them, so no statement reads another app's rows.

On PostgreSQL the rollup is ``telemetry_1m``'s day partitions, pruned by the minute range,
and read through its index on ``(app_id, name, minute, …)`` or in parallel sequential
scans, as the planner finds cheaper; percentiles and raw charts read ``telemetry_num``'s
partitions through ``(app_id, device_id, name, ts)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aislehub.explorer.model import ExplorerQuery
from aislehub.query.dialect import DIALECTS, Dialect

__all__ = ["ORIGIN", "Plan", "ResolvedScope", "ResolvedSplit", "align", "plan_explorer_query"]

ORIGIN = datetime(2000, 1, 3)  # a Monday at midnight: buckets align to minutes, days, weeks
_PERCENTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
# Aggregates over the partial columns c (count), s (sum), mn (min), mx (max).
_PARTIAL = {
    "avg": "sum(s) / sum(c)",
    "min": "min(mn)",
    "max": "max(mx)",
    "sum": "sum(s)",
    "count": "CAST(sum(c) AS float8)",
}
_RAW = {
    "avg": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "sum": "sum(value)",
    "count": "CAST(count(value) AS float8)",
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
    params: list[Any]  # as the store's ``query`` takes them
    source: str  # "rollup" or "raw"
    start: datetime  # naive UTC, aligned to the grain
    end: datetime
    bucket: timedelta  # the grain, or the pixel width of a raw chart
    count_sql: str = ""  # raw rows in range and scope (the budget check of a raw chart)
    count_params: list[Any] | None = None


@dataclass
class _Params:
    """The statement's parameters, in order; ``add`` gives a value's placeholder."""

    dialect: Dialect
    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return self.dialect.param(len(self.values))

    def finish(self, sql: str, count: int | None = None) -> tuple[str, list[Any]]:
        """``sql`` and its parameters, the first ``count`` values only if given."""
        return self.dialect.finish(sql, self.values[:count])


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
    query: ExplorerQuery,
    app_id: str,
    scope: ResolvedScope,
    split: ResolvedSplit,
    dialect: str = "duckdb",
    hourly: bool = False,
) -> Plan:
    """The statement for ``query`` in ``dialect``; ``hourly``: the store keeps
    ``telemetry_1h`` too (grains of whole hours read it, and minute grains their totals)."""
    d = DIALECTS[dialect]
    start, end = align(query)
    p = _Params(d)
    app, name = p.add(app_id), p.add(query.field_name)
    first, last = p.add(d.timestamp(start)), p.add(d.timestamp(end))
    component = (
        "r.component IS NULL"
        if query.component is None
        else f"r.component = {p.add(query.component)}"
    )
    join, scoping = _join(split, p), _scope(scope, p, app)

    def rows(table: str, time_col: str, low: str, high: str) -> str:
        return (
            f"FROM {table} r{join} WHERE r.app_id = {app} AND r.name = {name} AND {component} "
            f"AND r.module_id IS NULL AND {time_col} >= {low} AND {time_col} < {high}{scoping}"
        )

    rollup = uses_rollup(query)
    table, time_col = "telemetry_num", "r.ts"
    if rollup:
        by_hour = hourly and query.grain % _HOUR == timedelta(0)
        table, time_col = ("telemetry_1h", "r.hour") if by_hour else ("telemetry_1m", "r.minute")
    source = rows(table, time_col, first, last)
    scoped = len(p.values)  # the parameters the source's WHERE uses
    key = _key(split)
    limit = p.add(query.limit if split.kind != "none" else 1)
    ranking = _Ranking(d, "DESC" if query.sort == "highest" else "ASC", limit)
    percentile = query.aggregation in _PERCENTILES
    if query.mode == "raw":
        width = max((end - start) / query.points, timedelta(milliseconds=1))
        pixel = "NULL"  # every point, without downsampling
        if query.downsample:
            pixel = d.pixel("r.ts", first, p.add(int(width / timedelta(microseconds=1))))
        if not query.downsample or percentile:
            sql = ranking.raw_rows(query, key, source, pixel)
        else:
            part = (
                f"SELECT {key} AS key, {pixel} AS t, {d.arg_min('r.ts', 'r.value')} AS t0, "
                f"min(r.value) AS mn, {d.arg_max('r.ts', 'r.value')} AS t1, "
                f"max(r.value) AS mx, count(r.value) AS c, sum(r.value) AS s {source} "
                "GROUP BY 1, 2"
            )
            sql = ranking.folded(part, True, query.aggregation, extremes=True)
        count, counted = p.finish(f"SELECT count(*) {source}", scoped)
        sql, params = p.finish(sql)
        return Plan(sql, params, "raw", start, end, width, count, counted)
    own = {"r.minute": timedelta(minutes=1), "r.hour": _HOUR}.get(time_col)
    # The rollup's own bucket where the grain is its width.
    bucket = time_col if query.grain == own else d.bucket(p.add(query.grain), time_col, ORIGIN)
    if percentile:
        part = f"SELECT {key} AS key, {bucket} AS t, r.value {source}"
        agg = d.percentile("value", _PERCENTILES[query.aggregation])
        points = f"SELECT i, {d.epoch_ms('t')}, {agg}, NULL FROM ranked GROUP BY i, t"
        sql = ranking.assemble(part, agg, points)
    elif rollup:  # read where it lies: the steps after it aggregate the partials again
        cols = ", ".join(f"r.{_ROLLUP_COLUMNS[c]} AS {c}" for c in _NEEDS[query.aggregation])
        part = f"SELECT {key} AS key, {bucket} AS t, {cols} {source}"
        totals = None
        if hourly and time_col == "r.minute":
            bounds = (start, end, first, last)
            totals = _hourly_totals(bounds, p, rows, f"SELECT {key} AS key, {cols} ")
        sql = ranking.folded(part, False, query.aggregation, totals=totals)
    else:  # raw points grouped once into partials, read by every later step
        cols = ", ".join(f"{_RAW_PARTIALS[c]} AS {c}" for c in _NEEDS[query.aggregation])
        part = f"SELECT {key} AS key, {bucket} AS t, {cols} {source} GROUP BY 1, 2"
        sql = ranking.folded(part, True, query.aggregation)
    sql, params = p.finish(sql)
    return Plan(sql, params, "rollup" if rollup else "raw", start, end, query.grain)


_HOUR = timedelta(hours=1)


def _hourly_totals(
    bounds: tuple[datetime, datetime, str, str],
    p: _Params,
    rows: Callable[[str, str, str, str], str],
    select: str,
) -> str | None:
    """The rows the keys' totals are folded from at a minute grain when the store keeps
    ``telemetry_1h``: its rows for the whole hours of ``[start, end)``, the minutes' for
    the partial hours at either end (a day: 24 rows a key, not 1,440); None when the range
    holds no whole hour. ``bounds``: the range and its placeholders."""
    start, end, first, last = bounds
    whole = start + (-(start - ORIGIN) % _HOUR)  # the first hour boundary from start
    stop = end - (end - ORIGIN) % _HOUR
    if whole >= stop:
        return None
    low, high = p.add(p.dialect.timestamp(whole)), p.add(p.dialect.timestamp(stop))
    parts = [select + rows("telemetry_1h", "r.hour", low, high)]
    if start < whole:
        parts.append(select + rows("telemetry_1m", "r.minute", first, low))
    if stop < end:
        parts.append(select + rows("telemetry_1m", "r.minute", high, last))
    return " UNION ALL ".join(parts)


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
_FINAL = {"avg": "s / c", "min": "mn", "max": "mx", "sum": "s", "count": "CAST(c AS float8)"}
# The kept keys' totals and names, and the number of keys folded into "other".
_TOTALS = (
    "UNION ALL SELECT i, NULL, total, key FROM top "
    "UNION ALL SELECT -1, NULL, count(*) - (SELECT count(*) FROM top), NULL FROM keys"
)


@dataclass(frozen=True, slots=True)
class _Ranking:
    """The steps after ``part``: rank the keys ``order`` (ASC/DESC), keep ``limit``, fold."""

    d: Dialect
    order: str
    limit: str

    def folded(
        self,
        part: str,
        materialized: bool,
        aggregation: str,
        extremes: bool = False,
        totals: str | None = None,
    ) -> str:
        """Split, rank, limit and fold from partial aggregates, so the source is read once
        (``materialized``: raw points grouped into partials first) or only where each step
        needs it (rollup rows, inlined so the kept keys' filter reaches the scan).

        ``part`` has one row per key and bucket ``t`` or more, with the partial columns the
        aggregation needs (``c``, ``s``, ``mn``, ``mx``); with ``extremes`` (a raw chart's
        min/max per pixel) one row per key and pixel, with ``t0``/``t1`` the times of its
        lowest and highest point. Steps: ``keys``, each key's total; ``top``, the kept keys
        and their ranks; the kept keys' points; ``other``, every other key's partials
        combined per bucket, its points and, from those, its total; the number of keys
        folded into it. ``totals``: rows of the same partials per key (no ``t``) that sum
        to ``part``'s over the range, fewer of them (the hourly rollup), for the keys' totals.
        """
        d = self.d
        rank = _PARTIAL[aggregation]
        combine = ", ".join(f"{_COMBINE[c]} AS {c}" for c in _NEEDS[aggregation])
        of = "part" if totals is None else f"({totals}) AS totals"
        ctes = [
            f"part AS {'MATERIALIZED' if materialized else 'NOT MATERIALIZED'} ({part})",
            f"keys AS (SELECT key, {rank} AS total FROM {of} GROUP BY key)",
            self.top(),
        ]
        if extremes:
            combine = (
                f"{d.arg_min('t0', 'mn')} AS t0, min(mn) AS mn, {d.arg_max('t1', 'mx')} AS t1, "
                "max(mx) AS mx, sum(c) AS c, sum(s) AS s"
            )
            points = self.extremes()
        else:
            points = (
                f"SELECT i, {d.epoch_ms('t')}, {rank}, NULL FROM part JOIN top USING (key) "
                f"WHERE {d.among('key', 'SELECT key FROM top')} GROUP BY i, t UNION ALL "
                f"SELECT 0, {d.epoch_ms('t')}, {_FINAL[aggregation]}, NULL FROM other"
            )
        ctes.append(
            f"other AS (SELECT t, {combine} FROM part "
            f"WHERE {d.among('key', 'SELECT key FROM top', negate=True)} GROUP BY t)"
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

    def top(self) -> str:
        order = self.d.order("total", self.order == "DESC")
        ranked = (
            f"SELECT key, total, row_number() OVER (ORDER BY {order}, "
            f"{self.d.order('key', text=True)}) AS i FROM keys"
        )
        return (
            f"top AS (SELECT key, total, i FROM ({ranked}) AS ranked_keys WHERE i <= {self.limit})"
        )

    def extremes(self) -> str:
        """The lowest and the highest point of each series and pixel (``b``), at their own
        times."""
        d = self.d
        return (
            f"SELECT i, {d.epoch_ms('t0')}, mn, NULL FROM b WHERE t0 IS NOT NULL "
            f"UNION ALL SELECT i, {d.epoch_ms('t1')}, mx, NULL FROM b WHERE t1 <> t0"
        )

    def raw_rows(self, query: ExplorerQuery, key: str, source: str, pixel: str) -> str:
        """A raw chart ranked by a percentile, or without downsampling."""
        d = self.d
        part = f"SELECT {key} AS key, r.ts AS t, {pixel} AS px, r.value {source}"
        rank = (
            d.percentile("value", _PERCENTILES[query.aggregation])
            if query.aggregation in _PERCENTILES
            else _RAW[query.aggregation]
        )
        if not query.downsample:  # every point
            every = f"SELECT i, {d.epoch_ms('t')}, value, NULL FROM ranked"
            return self.assemble(part, rank, every)
        pixels = (
            f"b AS (SELECT i, {d.arg_min('t', 'value')} AS t0, min(value) AS mn, "
            f"{d.arg_max('t', 'value')} AS t1, max(value) AS mx FROM ranked GROUP BY i, px)"
        )
        return self.assemble(part, rank, self.extremes(), pixels)

    def assemble(self, part: str, rank: str, points: str, pixels: str | None = None) -> str:
        """The plain form, for percentiles (not combined from partials): ranked on the rows
        of ``part`` themselves; ``points`` reads ``ranked``, those rows with their series
        ``i`` (0 for "other"), or ``b``, the ``pixels`` made of them."""
        ctes = [
            f"part AS MATERIALIZED ({part})",
            f"keys AS (SELECT key, {rank} AS total FROM part GROUP BY key)",
            self.top(),
            "ranked AS (SELECT part.*, coalesce(top.i, 0) AS i "
            "FROM part LEFT JOIN top USING (key))",
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


def _join(split: ResolvedSplit, p: _Params) -> str:
    if split.kind == "template":
        return " LEFT JOIN device_catalog c ON c.app_id = r.app_id AND c.device_id = r.device_id"
    if split.kind == "map":
        devices = p.dialect.text_array(p.add(list(split.devices)))
        keys = p.dialect.text_array(p.add(list(split.keys)))
        return (
            f" LEFT JOIN (SELECT unnest({devices}) AS device_id, unnest({keys}) AS key) m "
            "ON m.device_id = r.device_id"
        )
    return ""


def _scope(scope: ResolvedScope, p: _Params, app: str) -> str:
    if scope.devices is not None:
        devices = p.dialect.text_array(p.add(list(scope.devices)))
        return f" AND r.device_id IN (SELECT unnest({devices}))"
    if scope.template is not None:
        return (
            " AND r.device_id IN (SELECT device_id FROM device_catalog "
            f"WHERE app_id = {app} AND template_id = {p.add(scope.template)})"
        )
    return ""
