"""The SQL that differs between the telemetry stores' engines: DuckDB and PostgreSQL.

The query-language planner (:mod:`aislehub.query.iotc_sql`) and the explorer's
(:mod:`aislehub.explorer.planner`) each write one statement per query for either store;
what differs is small and lives here, one method per piece:

============================  ===============================  ================================
piece                         DuckDB                           PostgreSQL
============================  ===============================  ================================
parameter ``n``               ``$n``                           ``%s`` (psycopg), in text order
timestamps                    ``TIMESTAMP``, naive UTC         ``timestamptz``, aware
bucket of a fixed width       ``time_bucket(w, ts, origin)``   ``date_bin(w, ts, origin)``
bucket of N months            ``time_bucket(to_months(N))``    month arithmetic from 2000-01
epoch milliseconds            ``epoch_ms(t)``                  ``extract(epoch …) * 1000``
value at the lowest key       ``arg_min(arg, key)``            ``min(ARRAY[key, arg])[2]``
first / last value by time    ``arg_min`` / ``arg_max``        ``array_agg(… ORDER BY ts)[1]``
percentile                    ``quantile_cont(v, f)``          ``percentile_cont(f) WITHIN …``
JSON string as text           ``json_extract_string(v, '$')``  ``v #>> '{}'``
a row as JSON text            ``to_json(struct_pack(…))``      ``json_build_object(…)::text``
text sort order               binary                           ``COLLATE "C"`` (binary too)
============================  ===============================  ================================

Both put NULLs last in either direction (DuckDB's default, said explicitly to
PostgreSQL), so the same data gives the same rows in the same order on both stores.
Everything else the planners write (``float8``, ``text[]``, ``FILTER``, ``MATERIALIZED``
CTEs, ``IS NOT DISTINCT FROM``, ``unnest``) is read alike by both engines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["DIALECTS", "Dialect", "DuckDB", "Postgres", "dialect_of"]

_ISO_MS_DUCKDB = "%Y-%m-%dT%H:%M:%S.%gZ"  # strftime: %g = milliseconds
_ISO_MS_POSTGRES = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'
_MONTH_ORIGIN = 2000 * 12  # months are counted from January 2000, as DuckDB's buckets
_MARK = re.compile(r"%%|%\(p(\d+)\)s")  # a literal % (doubled), or a parameter's mark


class Dialect:
    """The DuckDB forms; :class:`Postgres` overrides what PostgreSQL writes otherwise."""

    name = "duckdb"

    # -- parameters and values -----------------------------------------------------------
    def param(self, n: int) -> str:
        """The placeholder of the ``n``-th parameter (from 1); one may be used many times."""
        return f"${n}"

    def finish(self, sql: str, params: Sequence[Any]) -> tuple[str, list[Any]]:
        """The statement and its parameter list as the store's ``query`` takes them, from
        a statement written with :meth:`param` and the values in order."""
        return sql, list(params)

    def timestamp(self, ts: datetime) -> datetime:
        """A time parameter compared with the ``ts``/``minute`` columns (naive UTC here)."""
        return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts

    def text_array(self, placeholder: str) -> str:
        return f"CAST({placeholder} AS VARCHAR[])"

    # -- time ----------------------------------------------------------------------------
    def origin(self, origin: datetime) -> str:
        return f"TIMESTAMP '{origin.replace(tzinfo=None).isoformat(sep=' ')}'"

    def bucket(self, width: str, ts: str, origin: datetime) -> str:
        """The start of ``ts``'s bucket of the (fixed, interval) ``width``, buckets aligned
        to ``origin``."""
        return f"time_bucket({width}, {ts}, {self.origin(origin)})"

    def month_bucket(self, months: int, ts: str) -> str:
        """The start of ``ts``'s bucket of ``months`` calendar months, from January 2000."""
        return f"time_bucket(to_months({int(months)}), {ts})"

    def interval(self, width: timedelta) -> str:
        """A fixed width as a literal: an expression that repeats in SELECT, GROUP BY and
        ORDER BY must be the same text, and psycopg's placeholders number each use apart."""
        return f"INTERVAL {int(width / timedelta(microseconds=1))} MICROSECONDS"

    def epoch_ms(self, ts: str) -> str:
        return f"epoch_ms({ts})"

    def pixel(self, ts: str, start: str, width_us: str) -> str:
        """The pixel bucket of ``ts``: any value equal within a bucket, distinct between
        buckets (``width_us`` is the bucket's width in microseconds, an integer)."""
        return f"(epoch_us({ts}) - epoch_us({start})) // {width_us}"

    def iso_ms(self, ts: str) -> str:
        """A timestamp as ISO 8601 text, milliseconds, ``Z``."""
        return f"strftime({ts}, '{_ISO_MS_DUCKDB}')"

    # -- aggregates ----------------------------------------------------------------------
    def arg_min(self, arg: str, key: str) -> str:
        """``arg`` (a timestamp) at the lowest ``key`` (a double)."""
        return f"arg_min({arg}, {key})"

    def arg_max(self, arg: str, key: str) -> str:
        return f"arg_max({arg}, {key})"

    def first(self, value: str, ts: str, last: bool = False) -> str:
        """The earliest (``last``: latest) non-NULL ``value`` by ``ts``, of any type."""
        return f"{'arg_max' if last else 'arg_min'}({value}, {ts})"

    def any_value(self, value: str, where: str) -> str:
        return f"any_value({value}) FILTER (WHERE {where})"

    def percentile(self, value: str, fraction: float) -> str:
        return f"quantile_cont({value}, {fraction})"

    # -- JSON values ---------------------------------------------------------------------
    json_type = "JSON"

    def json_string(self, value: str) -> str:
        """A JSON string value as text, unquoted."""
        return f"json_extract_string({value}, '$')"

    def json_as(self, value: str, sql_type: str) -> str:
        """A JSON scalar as ``BOOLEAN`` or ``DOUBLE``."""
        return f"CAST({value} AS {sql_type})"

    def json_rows(self, sql: str, fields: Sequence[tuple[str, str, bool]]) -> str:
        """Each row of ``sql`` as the text of a JSON object: ``fields`` are (key, column,
        the column already holds JSON)."""
        members = ", ".join(
            f"{_quoted(key)} := {column}" + ("::JSON" if is_json else "")
            for key, column, is_json in fields
        )
        return f"SELECT to_json(struct_pack({members}))::VARCHAR FROM (\n{sql}\n) AS q"

    # -- ordering and sets ---------------------------------------------------------------
    def order(self, expr: str, descending: bool = False, text: bool = False) -> str:
        """``expr`` as an ORDER BY item: NULLs last either way, text by code point."""
        return expr + (" DESC" if descending else "")

    def among(self, expr: str, subquery: str, negate: bool = False) -> str:
        """Whether ``expr`` is (``negate``: is not) one of the few values ``subquery``
        gives, computed in the same statement (no NULLs)."""
        return f"{expr} {'NOT IN' if negate else 'IN'} ({subquery})"


class DuckDB(Dialect):
    name = "duckdb"


class Postgres(Dialect):
    name = "postgres"

    def param(self, n: int) -> str:
        return f"%(p{n})s"  # a mark for finish(): psycopg's positional %s, in text order

    def finish(self, sql: str, params: Sequence[Any]) -> tuple[str, list[Any]]:
        ordered: list[Any] = []

        def placeholder(mark: re.Match[str]) -> str:
            if mark.group(1) is None:
                return "%%"
            ordered.append(params[int(mark.group(1)) - 1])
            return "%s"

        return _MARK.sub(placeholder, sql), ordered

    def timestamp(self, ts: datetime) -> datetime:
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)

    def text_array(self, placeholder: str) -> str:
        return f"CAST({placeholder} AS text[])"

    def origin(self, origin: datetime) -> str:
        return f"timestamptz '{self.timestamp(origin).isoformat(sep=' ')}'"

    def bucket(self, width: str, ts: str, origin: datetime) -> str:
        return f"date_bin(CAST({width} AS interval), {ts}, {self.origin(origin)})"

    def month_bucket(self, months: int, ts: str) -> str:
        index = f"(extract(year FROM {ts}) * 12 + extract(month FROM {ts}) - {_MONTH_ORIGIN + 1})"
        n = int(months)
        return (
            f"(timestamptz '2000-01-01 00:00:00+00' + "
            f"make_interval(months => CAST(floor({index} / {n}) AS int) * {n}))"
        )

    def interval(self, width: timedelta) -> str:
        return f"interval '{int(width / timedelta(microseconds=1))} microseconds'"

    def epoch_ms(self, ts: str) -> str:
        return f"CAST(floor(extract(epoch FROM {ts}) * 1000) AS int8)"

    def pixel(self, ts: str, start: str, width_us: str) -> str:
        # date_bin is integer arithmetic on the timestamp: cheaper per raw point than
        # extracting epochs as numeric.
        width = f"make_interval(secs => CAST({width_us} AS float8) / 1000000)"
        return f"date_bin({width}, {ts}, {start})"

    def iso_ms(self, ts: str) -> str:
        return f"to_char({ts} AT TIME ZONE 'UTC', '{_ISO_MS_POSTGRES}')"

    def arg_min(self, arg: str, key: str) -> str:
        return self._arg("min", arg, key)

    def arg_max(self, arg: str, key: str) -> str:
        return self._arg("max", arg, key)

    @staticmethod
    def _arg(extreme: str, arg: str, key: str) -> str:
        # PostgreSQL has no arg_min: arrays compare element by element, so the extreme of
        # [key, epoch µs] carries its time (µs since 1970 fit a double exactly). Ties go to
        # the earliest (min) or the latest (max) time.
        us = f"CAST(extract(epoch FROM {arg}) * 1000000 AS float8)"
        return f"to_timestamp(({extreme}(ARRAY[{key}, {us}]))[2] / 1000000)"

    def first(self, value: str, ts: str, last: bool = False) -> str:
        order = f"{ts} DESC" if last else ts
        return f"(array_agg({value} ORDER BY {order}) FILTER (WHERE {value} IS NOT NULL))[1]"

    def any_value(self, value: str, where: str) -> str:
        return f"(array_agg({value}) FILTER (WHERE {where}))[1]"

    def percentile(self, value: str, fraction: float) -> str:
        return f"percentile_cont({fraction}) WITHIN GROUP (ORDER BY {value})"

    json_type = "jsonb"

    def json_string(self, value: str) -> str:
        return f"({value} #>> '{{}}')"

    def json_as(self, value: str, sql_type: str) -> str:
        target = {"DOUBLE": "float8", "BOOLEAN": "boolean"}[sql_type]
        return f"CAST({value} AS {target})"

    def json_rows(self, sql: str, fields: Sequence[tuple[str, str, bool]]) -> str:
        members = ", ".join(f"{_string(key)}, {column}" for key, column, _ in fields)
        return f"SELECT json_build_object({members})::text FROM (\n{sql}\n) AS q"

    def order(self, expr: str, descending: bool = False, text: bool = False) -> str:
        collated = f'{expr} COLLATE "C"' if text else expr
        return collated + (" DESC NULLS LAST" if descending else " NULLS LAST")

    def among(self, expr: str, subquery: str, negate: bool = False) -> str:
        # An array built once (an InitPlan): ``= ANY`` becomes an index condition, and a
        # parallel scan's workers get the array, where IN (subquery) over a CTE would
        # keep the scan in one process.
        return f"{expr} {'<> ALL' if negate else '= ANY'}(ARRAY({subquery}))"


DIALECTS: dict[str, Dialect] = {"duckdb": DuckDB(), "postgres": Postgres()}


def dialect_of(store: object) -> Dialect:
    """The dialect of a telemetry store's ``query`` (its ``dialect`` attribute)."""
    name = getattr(store, "dialect", None)
    if not isinstance(name, str) or name not in DIALECTS:
        raise ValueError(f"no SQL dialect {name!r}: the telemetry store cannot run queries")
    return DIALECTS[name]


def _quoted(identifier: str) -> str:
    """A DuckDB quoted identifier (keys are the query's names and aliases)."""
    return '"' + identifier.replace('"', '""') + '"'


def _string(text: str) -> str:
    """A PostgreSQL string literal in a psycopg statement (standard_conforming_strings:
    quotes double; ``%`` doubles for psycopg's placeholders)."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"  # psycopg reads %
