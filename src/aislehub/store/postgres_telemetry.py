"""The scale-out telemetry store: PostgreSQL (psycopg 3), time-partitioned tables.

Same tables and columns as :mod:`aislehub.store.duckdb_telemetry` (``telemetry_num``,
``telemetry_val`` with ``jsonb`` values, ``telemetry_unmodeled``, ``messages``,
``consumer_offsets``, ``device_catalog``, ``template_fields``), plus ``telemetry_1m`` and
``telemetry_1h``, one-minute and one-hour rollups of ``telemetry_num`` maintained by every
batch (the explorer reads them; the hourly one gives a day's per-device totals from 24 rows
a device, not 1,440).

Partitions. ``messages``, the three field tables and the rollups are partitioned by
range of their timestamp, one partition per UTC day (``<table>_pYYYYMMDD``). The store
creates today's and the next ``ahead_days`` days' partitions when it opens, and before
each batch those of any day the batch holds that has none yet (server timestamps are
receive times, so that is rarely more than "today"). New partitions are created empty
and then attached, which locks the parent only in SHARE UPDATE EXCLUSIVE mode: reads and
writes go on meanwhile. :meth:`PostgresTelemetryStore.drop_partitions_before` is the
retention: whole days are detached (concurrently) and dropped, never rows deleted.

A batch, in one transaction on the writer's connection:

1. the consumer's offset, upserted first, only if the batch's last offset is above the
   committed one: otherwise nothing is written (a replay) and the row lock serialises
   two writers of one consumer;
2. the messages, classified in Python by orjson (the strict RFC 8259 reader the payload
   rules are written against, ~2 µs a message): ``object``, ``other`` (valid JSON, not an
   object), ``deep`` (nested deeper than 254 levels) or ``invalid``; then one binary
   ``COPY`` into a temporary staging table;
3. one SQL statement: ``messages`` rows, the objects' top-level fields exploded by
   ``json_each`` (the value's text as sent, so ``1`` and ``1.0`` stay distinct for the
   integer checks), typed against the catalog exactly as DuckDB's ``_FITS`` does, into
   ``telemetry_num`` / ``telemetry_val`` / ``telemetry_unmodeled``, and the numeric rows
   folded into ``telemetry_1m`` and ``telemetry_1h`` (count, sum, min, max per field and
   minute, and hour, upserted). A replayed batch is refused by step 1, so the rollups never
   count a batch twice.

Why orjson in Python and not a ``try_jsonb`` in PL/pgSQL: each call of a function with an
exception block opens a subtransaction, which measured a little slower than orjson
(``bench/telemetry_backends.py``), and PostgreSQL's JSON readers differ from RFC 8259 in
both directions (``json`` takes lone surrogates and numbers beyond a double, ``jsonb``
refuses ``\\u0000``), while orjson is the strict reader the payload rules are written
against. Payloads that PostgreSQL cannot hold as sent are normalised by re-serialising
the parsed object: an escaped NUL becomes U+FFFD in the field rows (PostgreSQL text
cannot hold NUL) with the exact bytes kept in ``messages.raw``, and numbers that
underflow a double become ``0.0`` (orjson's reading; PostgreSQL's ``float8`` refuses
them). Text columns from the property bag lose NUL characters the same way. ``jsonb``
keeps numbers as decimals: a float inside an object or array reads back as the same
number written out in full (``5.6e16`` as ``56000000000000000``).

Reads use a small pool of autocommit, read-only connections (each statement sees the
batches committed before it); the writer has its own connection behind a lock. Every
connection runs in UTC.
"""

from __future__ import annotations

import contextlib
import math
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from aislehub.store.telemetry import (
    DEVICE_CATALOG_SCHEMA,
    TEMPLATE_FIELDS_SCHEMA,
    BatchCounts,
    Catalog,
    TelemetryBatch,
    UnmodeledField,
)

__all__ = ["PARTITIONED_TABLES", "PostgresTelemetryStore"]

_KEYS = "app_id text NOT NULL, device_id text NOT NULL, module_id text, component text"
_FIELD_COLUMNS = f"{_KEYS}, name text NOT NULL, ts timestamptz NOT NULL"
# Partitioned by day.
PARTITIONED_TABLES = (  # by ``ts``; the rollups by their ``minute`` / ``hour``
    "messages",
    "telemetry_num",
    "telemetry_val",
    "telemetry_unmodeled",
    "telemetry_1m",
    "telemetry_1h",
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS telemetry_num (
    {_FIELD_COLUMNS}, value double precision, log_offset bigint) PARTITION BY RANGE (ts);
CREATE TABLE IF NOT EXISTS telemetry_val (
    {_FIELD_COLUMNS}, value jsonb, log_offset bigint) PARTITION BY RANGE (ts);
CREATE TABLE IF NOT EXISTS telemetry_unmodeled (
    {_FIELD_COLUMNS}, value jsonb, log_offset bigint, reason text NOT NULL)
    PARTITION BY RANGE (ts);
CREATE TABLE IF NOT EXISTS messages (
    {_KEYS}, ts timestamptz NOT NULL, log_offset bigint NOT NULL, message_id text,
    properties json, raw bytea, valid_json boolean NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE IF NOT EXISTS telemetry_1m (
    {_KEYS}, name text NOT NULL, minute timestamptz NOT NULL, count bigint NOT NULL,
    sum double precision NOT NULL, min double precision NOT NULL,
    max double precision NOT NULL) PARTITION BY RANGE (minute);
CREATE TABLE IF NOT EXISTS telemetry_1h (
    {_KEYS}, name text NOT NULL, hour timestamptz NOT NULL, count bigint NOT NULL,
    sum double precision NOT NULL, min double precision NOT NULL,
    max double precision NOT NULL) PARTITION BY RANGE (hour);
CREATE TABLE IF NOT EXISTS consumer_offsets (
    consumer text PRIMARY KEY, log_offset bigint NOT NULL);
CREATE TABLE IF NOT EXISTS device_catalog (
    app_id text NOT NULL, device_id text NOT NULL, template_id text,
    provisioned boolean NOT NULL, simulated boolean NOT NULL, enabled boolean NOT NULL,
    PRIMARY KEY (app_id, device_id));
CREATE TABLE IF NOT EXISTS template_fields (
    app_id text NOT NULL, template_id text NOT NULL, component text NOT NULL,
    name text NOT NULL, kind text NOT NULL, enum_values text[], unit text,
    semantic_type text, PRIMARY KEY (app_id, template_id, component, name));
CREATE INDEX IF NOT EXISTS telemetry_num_field ON telemetry_num (app_id, device_id, name, ts);
CREATE INDEX IF NOT EXISTS telemetry_val_field ON telemetry_val (app_id, device_id, name, ts);
CREATE INDEX IF NOT EXISTS telemetry_unmodeled_device ON telemetry_unmodeled (app_id, device_id);
-- No (app_id, device_id) index on messages: nothing on the read path counts one
-- device's messages, and each index is a write per message.
CREATE INDEX IF NOT EXISTS messages_offset ON messages (log_offset);
CREATE UNIQUE INDEX IF NOT EXISTS telemetry_1m_key ON telemetry_1m
    (app_id, name, minute, device_id, module_id, component) NULLS NOT DISTINCT;
-- The explorer's series of a few devices (the kept keys of a split, a device scope) read
-- their minutes through this one. Its columns never change on the rollup's upserts, so
-- those stay HOT updates where the page has room; one index entry per new minute row.
CREATE INDEX IF NOT EXISTS telemetry_1m_device ON telemetry_1m (app_id, name, device_id, minute);
CREATE UNIQUE INDEX IF NOT EXISTS telemetry_1h_key ON telemetry_1h
    (app_id, name, hour, device_id, module_id, component) NULLS NOT DISTINCT;
"""
# Schema changes and partition creation from several processes serialise on this lock.
_DDL_LOCK = 0x61697368_74656C65  # "aishtele"

# -- the write ------------------------------------------------------------------------

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS _batch (
    app_id text, device_id text, module_id text, component text, ts_ms bigint,
    log_offset bigint, message_id text, properties text, kind text, doc bytea, raw bytea
) ON COMMIT DELETE ROWS
"""
_STAGE_COLUMNS = [
    "app_id",
    "device_id",
    "module_id",
    "component",
    "ts_ms",
    "log_offset",
    "message_id",
    "properties",
    "kind",
    "doc",
    "raw",
]
_STAGE_TYPES = ["text", "text", "text", "text", "int8", "int8", "text", "text", "text"]
_STAGE_TYPES += ["bytea", "bytea"]
_COPY_STAGE = f"COPY _batch ({', '.join(_STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

_ADVANCE = """
INSERT INTO consumer_offsets VALUES (%s, %s) ON CONFLICT (consumer)
DO UPDATE SET log_offset = excluded.log_offset
WHERE consumer_offsets.log_offset < excluded.log_offset
RETURNING log_offset
"""

# Field values are JSON text as sent (json_each keeps each value's own text, and orjson
# already accepted the payload), so the first character gives the JSON type.
_NUMBER = "(ascii(value) = 45 OR ascii(value) BETWEEN 48 AND 57)"
_INTEGRAL = r"value ~ '^-?[0-9]+$'"
_STRING = "(value::jsonb #>> '{}')"  # the string itself, escapes resolved
_DATE = r"\d{4}-\d{2}-\d{2}"
_TIME = r"\d{2}:\d{2}:\d{2}(\.\d+)?"
_DATE_TIME = rf"{_DATE}[Tt]{_TIME}([Zz]|[+-]\d{{2}}:\d{{2}})"
_DURATION = r"P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?"
_NUMERIC_KINDS = "('double', 'float', 'integer', 'long')"
_GEO_NUMBER = "jsonb_typeof(value::jsonb -> '{0}') = 'number'"
# The same verdicts as DuckDB's _FITS (duckdb_telemetry.py); enum members compare as
# JSON values (escapes resolved), integer enums only with integral literals.
_FITS = f"""CASE field_kind
    WHEN 'double' THEN {_NUMBER}
    WHEN 'float' THEN {_NUMBER} AND abs(value::float8) <= 3.4028234663852886e38
    WHEN 'integer' THEN {_INTEGRAL} AND value::numeric BETWEEN -2147483648 AND 2147483647
    WHEN 'long' THEN {_INTEGRAL}
        AND value::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
    WHEN 'boolean' THEN value IN ('true', 'false')
    WHEN 'string' THEN ascii(value) = 34
    WHEN 'date' THEN ascii(value) = 34 AND {_STRING} ~ '^{_DATE}$'
    WHEN 'time' THEN ascii(value) = 34 AND {_STRING} ~ '^{_TIME}$'
    WHEN 'dateTime' THEN ascii(value) = 34 AND {_STRING} ~ '^{_DATE_TIME}$'
    WHEN 'duration' THEN ascii(value) = 34 AND {_STRING} ~ '^{_DURATION}$'
        AND {_STRING} NOT IN ('P', 'PT') AND right({_STRING}, 1) <> 'T'
    WHEN 'enum' THEN value::jsonb = ANY(enum_values::jsonb[])
        AND NOT ({_NUMBER} AND NOT {_INTEGRAL})
    WHEN 'object' THEN ascii(value) = 123
    WHEN 'map' THEN ascii(value) = 123
    WHEN 'array' THEN ascii(value) = 91
    WHEN 'geopoint' THEN ascii(value) = 123
        AND (jsonb_typeof(value::jsonb -> 'coordinates') = 'array'
            OR ({_GEO_NUMBER.format("lat")} AND {_GEO_NUMBER.format("lon")}))
    WHEN 'geometry' THEN ascii(value) = 123 AND jsonb_typeof(value::jsonb -> 'type') = 'string'
    ELSE false END"""
_TS = "(timestamptz 'epoch' + ts_ms * interval '1 millisecond')"
# One statement: messages, fields, rollup, counts. Data-modifying CTEs all run, each
# once, over the one materialised field list.
_WRITE = f"""
WITH m AS (
    INSERT INTO messages SELECT app_id, device_id, module_id, component, {_TS}, log_offset,
        message_id, properties::json, raw, kind <> 'invalid'
    FROM _batch
), f AS MATERIALIZED (
    SELECT *, CASE WHEN dest = 'num' THEN value::float8 END AS number FROM (
        SELECT x.*, CASE
            WHEN template_id IS NULL THEN CASE WHEN {_NUMBER} THEN 'num' ELSE 'val' END
            WHEN field_kind IS NULL THEN 'unknown'
            WHEN {_FITS}
                THEN CASE WHEN field_kind IN {_NUMERIC_KINDS} THEN 'num' ELSE 'val' END
            ELSE 'mistyped' END AS dest
        FROM (
            SELECT b.app_id, b.device_id, b.module_id, b.component, b.ts, b.ts_ms, b.log_offset,
                e.key AS name, e.value::text AS value, d.template_id, t.kind AS field_kind,
                t.enum_values
            FROM (SELECT *, {_TS} AS ts FROM _batch WHERE kind = 'object') b
            CROSS JOIN LATERAL json_each(convert_from(b.doc, 'UTF8')::json) e
            LEFT JOIN device_catalog d ON d.app_id = b.app_id AND d.device_id = b.device_id
                AND (b.module_id IS NULL OR EXISTS (SELECT 1 FROM template_fields mm
                    WHERE mm.app_id = d.app_id AND mm.template_id = d.template_id
                    AND starts_with(mm.component, b.module_id || '/')))
            LEFT JOIN template_fields t ON t.app_id = b.app_id
                AND t.template_id = d.template_id AND t.name = e.key
                AND t.component = CASE WHEN b.module_id IS NULL THEN coalesce(b.component, '')
                    ELSE b.module_id || '/' || coalesce(b.component, '') END
        ) x
    ) typed
), n AS (
    INSERT INTO telemetry_num SELECT app_id, device_id, module_id, component, name, ts,
        number, log_offset FROM f WHERE dest = 'num'
), v AS (
    INSERT INTO telemetry_val SELECT app_id, device_id, module_id, component, name, ts,
        value::jsonb, log_offset FROM f WHERE dest = 'val'
), u AS (
    INSERT INTO telemetry_unmodeled SELECT app_id, device_id, module_id, component, name,
        ts, value::jsonb, log_offset, dest FROM f WHERE dest IN ('unknown', 'mistyped')
), minutes AS MATERIALIZED (
    SELECT app_id, device_id, module_id, component, name, minute_ms,
        count(*) AS count, sum(number) AS sum, min(number) AS min, max(number) AS max
    FROM (SELECT *, ts_ms - ((ts_ms % 60000) + 60000) % 60000 AS minute_ms
        FROM f WHERE dest = 'num') numbers
    GROUP BY app_id, device_id, module_id, component, name, minute_ms
), r AS (
    INSERT INTO telemetry_1m AS o SELECT app_id, device_id, module_id, component, name,
        timestamptz 'epoch' + minute_ms * interval '1 millisecond', count, sum, min, max
    FROM minutes
    ON CONFLICT (app_id, name, minute, device_id, module_id, component) DO UPDATE SET
        count = o.count + excluded.count, sum = o.sum + excluded.sum,
        min = least(o.min, excluded.min), max = greatest(o.max, excluded.max)
), h AS (  -- folded from the batch's minutes, a few thousand rows, not from its fields
    INSERT INTO telemetry_1h AS o SELECT app_id, device_id, module_id, component, name,
        timestamptz 'epoch' + hour_ms * interval '1 millisecond',
        sum(count), sum(sum), min(min), max(max)
    FROM (SELECT *, minute_ms - ((minute_ms % 3600000) + 3600000) % 3600000 AS hour_ms
        FROM minutes) hours
    GROUP BY app_id, device_id, module_id, component, name, hour_ms
    ON CONFLICT (app_id, name, hour, device_id, module_id, component) DO UPDATE SET
        count = o.count + excluded.count, sum = o.sum + excluded.sum,
        min = least(o.min, excluded.min), max = greatest(o.max, excluded.max)
)
SELECT count(*) FILTER (WHERE dest = 'num'), count(*) FILTER (WHERE dest = 'val'),
    count(*) FILTER (WHERE dest = 'unknown'), count(*) FILTER (WHERE dest = 'mistyped')
FROM f
"""

# The writer's sorts and the materialised field list of a 50k-message batch (~200k
# rows) fit in memory with this; PostgreSQL's default, 4 MB, spills them to disk.
_WORK_MEM = "64MB"

# -- payload classification (Python, orjson) --------------------------------------------

_NEST_LIMIT = 254  # orjson reads 1024 levels and writes 254: deeper cannot be read back
_ZEROS = b"0" * 300
_OBJECT, _OTHER, _DEEP, _INVALID = "object", "other", "deep", "invalid"


def _classify(
    payloads: Iterable[bytes],
) -> tuple[list[str], list[bytes | None], list[bytes | None]]:
    """Per payload: its kind, the JSON text to explode (objects), the bytes to keep raw."""
    kinds: list[str] = []
    docs: list[bytes | None] = []
    raws: list[bytes | None] = []
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    for payload in payloads:
        try:
            doc = loads(payload)
        except decode_error as exc:
            deeper = "depth limit" in str(exc)  # over orjson's 1024 levels: read it here
            kinds.append(_deep_kind(payload) if deeper else _INVALID)
            docs.append(None)
            raws.append(payload)
            continue
        if type(doc) is not dict:
            kinds.append(_OTHER)
            docs.append(None)
            raws.append(payload)
        elif (
            (len(payload) > 2 * _NEST_LIMIT + 1 and _maybe_deep(payload))
            or b"\\u0000" in payload
            or b"e-" in payload
            or b"E-" in payload
            or _ZEROS in payload
        ):
            kind, text, raw = _normalise(payload, doc)
            kinds.append(kind)
            docs.append(text)
            raws.append(raw)
        else:
            kinds.append(_OBJECT)
            docs.append(payload)
            raws.append(None)
    return kinds, docs, raws


def _maybe_deep(payload: bytes) -> bool:
    return payload.count(b"[") + payload.count(b"{") > _NEST_LIMIT


def _normalise(payload: bytes, doc: dict[str, Any]) -> tuple[str, bytes | None, bytes | None]:
    """The slow path: a payload that is too deep, holds ``\\u0000`` or tiny numbers."""
    nul = b"\\u0000" in payload and _has_nul(doc)
    try:
        text = orjson.dumps(_without_nul(doc) if nul else doc)
    except orjson.JSONEncodeError:
        return _DEEP, None, payload
    return _OBJECT, text, payload if nul else None


# RFC 8259 tokens (after optional whitespace): string, number, literal, punctuation.
_TOKEN = re.compile(
    r'[ \t\n\r]*(?:(?P<s>"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")'
    r"|(?P<n>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<l>true|false|null)|(?P<p>[{}\[\]:,]))"
)
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)")


def _deep_kind(payload: bytes) -> str:
    """``deep``, ``other`` or ``invalid`` for a payload nested past orjson's reach.

    The same strictness as orjson (UTF-8, RFC 8259, no lone surrogate escapes, numbers
    within a double), read with an explicit stack: no recursion, any depth.
    """
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return _INVALID
    stack: list[str] = []
    expect, pos, first = "value", 0, ""
    while (token := _TOKEN.match(text, pos)) is not None:
        pos, kind = token.end(), token.lastgroup
        value = token.group(kind or 0)
        first = first or value
        if kind == "s" and not _paired_surrogates(value):
            return _INVALID
        if kind == "n" and not math.isfinite(float(value)):
            return _INVALID
        if expect in ("value", "first value"):
            if value == "]" and expect == "first value":
                stack.pop()
                expect = "after"
            elif kind != "p":
                expect = "after"
            elif value in "{[":
                stack.append(value)
                expect = "first key" if value == "{" else "first value"
            else:
                return _INVALID
        elif expect in ("key", "first key"):
            if value == "}" and expect == "first key":
                stack.pop()
                expect = "after"
            elif kind == "s":
                expect = "colon"
            else:
                return _INVALID
        elif expect == "colon":
            if value != ":":
                return _INVALID
            expect = "value"
        elif not stack:  # expect == "after" the whole document
            return _INVALID
        elif value == ",":
            expect = "key" if stack[-1] == "{" else "value"
        elif (value, stack[-1]) in (("}", "{"), ("]", "[")):
            stack.pop()
        else:
            return _INVALID
    if stack or expect != "after" or text[pos:].strip(" \t\n\r"):
        return _INVALID
    return _DEEP if first == "{" else _OTHER


def _paired_surrogates(string: str) -> bool:
    """No ``\\uD800``-``\\uDFFF`` escape outside a high-low pair."""
    if "\\u" not in string:
        return True
    high_at = -1  # end of a high surrogate escape still waiting for its low half
    for escape in _ESCAPE.finditer(string):
        code = int(escape.group(1), 16) if escape.group(1) else -1
        if high_at >= 0:
            if escape.start() != high_at or not 0xDC00 <= code <= 0xDFFF:
                return False
            high_at = -1
        elif 0xD800 <= code <= 0xDBFF:
            high_at = escape.end()
        elif 0xDC00 <= code <= 0xDFFF:
            return False
    return high_at < 0


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {k.replace("\x00", "\ufffd"): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _text_column(column: pa.ChunkedArray) -> list[str | None]:
    """A string column as Python values; NUL characters (not storable) become U+FFFD."""
    if pc.any(pc.match_substring(column, "\x00")).as_py():
        column = pc.replace_substring(column, "\x00", "\ufffd")
    values: list[str | None] = column.to_pylist()
    return values


# -- queries ----------------------------------------------------------------------------

_FIELD = (
    "app_id = %(app)s AND device_id = %(device)s AND name = %(name)s "
    "AND component IS NOT DISTINCT FROM %(component)s::text "
    "AND module_id IS NOT DISTINCT FROM %(module)s::text"
)
# Each branch walks its partitions' (app, device, name, ts) index backwards, newest
# partition first (Merge Append), and stops at the first row.
_LATEST = f"""
SELECT * FROM (
    (SELECT ts, value, NULL::text FROM telemetry_num WHERE {_FIELD}
     ORDER BY ts DESC, log_offset DESC LIMIT 1)
    UNION ALL
    (SELECT ts, NULL::float8, value::text FROM telemetry_val WHERE {_FIELD}
     ORDER BY ts DESC, log_offset DESC LIMIT 1)
) latest ORDER BY 1 DESC LIMIT 1
"""
_RANGE = f"""
SELECT ts, value, NULL::text, log_offset FROM telemetry_num
WHERE {_FIELD} AND ts >= %(start)s AND ts < %(end)s
UNION ALL
SELECT ts, NULL::float8, value::text, log_offset FROM telemetry_val
WHERE {_FIELD} AND ts >= %(start)s AND ts < %(end)s
ORDER BY 1, 4 LIMIT %(limit)s
"""
_UNMODELED = """
SELECT component, module_id, name, reason, count(*), max(ts),
    (array_agg(value::text ORDER BY ts DESC, log_offset DESC))[1]
FROM telemetry_unmodeled WHERE app_id = %s AND device_id = %s
GROUP BY component, module_id, name, reason
ORDER BY name COLLATE "C", component COLLATE "C", reason
"""


class PostgresTelemetryStore:
    """:class:`~aislehub.store.telemetry.TelemetryStore` on a PostgreSQL database.

    ``url``: a libpq connection string or URL (``postgresql://…``; SQLAlchemy's
    ``postgresql+psycopg://`` is accepted too). The database must exist; the tables are
    created when missing. ``readers``: the most connections the query methods hold at
    once (more concurrent readers wait). ``ahead_days``: partitions are kept this many
    days ahead of today.
    """

    def __init__(self, url: str, readers: int = 4, ahead_days: int = 2) -> None:
        self._conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._ahead_days = ahead_days
        self._write_lock = threading.Lock()
        self._writer: psycopg.Connection[Any] | None = None
        self._days: set[date] = set()  # days with partitions, as this process knows them
        self._closed = False
        self._readers = _Pool(self._connect_reader, readers)
        with self._write_lock:
            conn = self._writer_connection()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
                conn.execute(_SCHEMA)
            self._load_days(conn)
            self._complete_days(conn)
            self._ensure_days(conn, _days_ahead(ahead_days))

    # -- write side ------------------------------------------------------------------

    def write_batch(
        self, consumer: str, batch: TelemetryBatch, last_offset: int
    ) -> BatchCounts | None:
        table = batch.messages
        kinds, docs, raws = _classify(table.column("payload").to_pylist())
        columns = [
            _text_column(table.column("app_id")),
            _text_column(table.column("device_id")),
            _text_column(table.column("module_id")),
            _text_column(table.column("component")),
            table.column("ts").cast(pa.int64()).to_pylist(),
            table.column("log_offset").to_pylist(),
            _text_column(table.column("message_id")),
            table.column("properties").to_pylist(),
            kinds,
            docs,
            raws,
        ]
        days = _days_of(table.column("ts"))
        with self._write_lock:
            conn = self._writer_connection()
            self._ensure_days(conn, days | _days_ahead(self._ahead_days))
            try:
                try:
                    fields = self._write(conn, consumer, columns, last_offset)
                except psycopg.errors.CheckViolation:
                    # A partition this process knew of was dropped by another (retention):
                    # learn the days again and retry once.
                    self._load_days(conn)
                    self._ensure_days(conn, days)
                    fields = self._write(conn, consumer, columns, last_offset)
            except _Replayed:
                return None
        return BatchCounts(
            len(batch),
            invalid_json=kinds.count(_INVALID),
            not_object=kinds.count(_OTHER),
            too_deep=kinds.count(_DEEP),
            number_rows=fields[0],
            value_rows=fields[1],
            unknown_fields=fields[2],
            mistyped_fields=fields[3],
        )

    @staticmethod
    def _write(
        conn: psycopg.Connection[Any], consumer: str, columns: list[list[Any]], last_offset: int
    ) -> tuple[int, int, int, int]:
        with conn.transaction(), conn.cursor() as cur:
            if cur.execute(_ADVANCE, [consumer, last_offset]).fetchone() is None:
                raise _Replayed  # rolls the transaction back
            if not columns[0]:
                return 0, 0, 0, 0
            with cur.copy(_COPY_STAGE) as copy:
                copy.set_types(_STAGE_TYPES)
                for row in zip(*columns, strict=True):
                    copy.write_row(row)
            # The planner cannot see how many rows json_each makes (nor how few groups
            # they fold into): left alone it sorts ~150k rows for the rollup, where a
            # hash aggregate is what fits. Nothing else in _WRITE sorts.
            cur.execute("SET LOCAL enable_sort = off")
            counts = cur.execute(_WRITE).fetchone()
            assert counts is not None
            return int(counts[0]), int(counts[1]), int(counts[2]), int(counts[3])

    def committed_offset(self, consumer: str) -> int:
        rows = self._fetch(
            "SELECT log_offset FROM consumer_offsets WHERE consumer = %s", [consumer]
        )
        return int(rows[0][0]) if rows else -1

    def sync_catalog(self, catalog: Catalog) -> None:
        devices = catalog.devices.select(DEVICE_CATALOG_SCHEMA.names)
        fields = catalog.fields.select(TEMPLATE_FIELDS_SCHEMA.names)
        with self._write_lock:
            conn = self._writer_connection()
            with conn.transaction(), conn.cursor() as cur:  # both tables at once
                cur.execute("DELETE FROM device_catalog")
                cur.execute("DELETE FROM template_fields")
                _copy_table(cur, "device_catalog", devices, ["text"] * 3 + ["bool"] * 3)
                _copy_table(
                    cur, "template_fields", fields, ["text"] * 5 + ["text[]"] + ["text"] * 2
                )

    # -- partitions ------------------------------------------------------------------

    def create_partitions(self, first: date, last: date) -> None:
        """Make sure every day from ``first`` to ``last`` (inclusive) has its partitions."""
        days = {first + timedelta(days=i) for i in range((last - first).days + 1)}
        with self._write_lock:
            self._ensure_days(self._writer_connection(), days)

    def partition_days(self) -> list[date]:
        """The days that have partitions, oldest first."""
        with self._write_lock:
            conn = self._writer_connection()
            self._load_days(conn)
            return sorted(self._days)

    def drop_partitions_before(self, before: datetime | date) -> list[date]:
        """Retention: drop every day's partitions that end at or before ``before``.

        Whole days only (a day is dropped once all of it is older than ``before``), in
        every partitioned table, the rollup included; returns the days dropped. Each
        partition is detached concurrently (no lock that blocks readers or the writer)
        and then dropped.
        """
        if isinstance(before, datetime):
            limit = _aware(before)
        else:
            limit = datetime.combine(before, datetime.min.time(), UTC)
        dropped: list[date] = []
        with self._write_lock:
            conn = self._writer_connection()
            self._load_days(conn)
            for day in sorted(d for d in self._days if _start_of(d + timedelta(days=1)) <= limit):
                for table in PARTITIONED_TABLES:
                    _drop_partition(conn, table, day)
                self._days.discard(day)
                dropped.append(day)
        return dropped

    def _load_days(self, conn: psycopg.Connection[Any]) -> None:
        """The days with a ``messages`` partition: this process's map of partitions."""
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'messages'::regclass"
        ).fetchall()
        self._days = {d for (name,) in rows if (d := _day_of_partition(name)) is not None}

    def _complete_days(self, conn: psycopg.Connection[Any]) -> None:
        """Each known day's partition of every table, those of a table the schema gained
        since the day's were made (``telemetry_1h``) created now."""
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY(%s)",
            [list(PARTITIONED_TABLES)],
        ).fetchall()
        present = {name for (name,) in rows}
        missing = [
            (table, day)
            for day in sorted(self._days)
            for table in PARTITIONED_TABLES
            if _partition_name(table, day) not in present
        ]
        if missing:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
                for table, day in missing:
                    _create_partition(conn, table, day)

    def _ensure_days(self, conn: psycopg.Connection[Any], days: set[date]) -> None:
        missing = sorted(days - self._days)
        if not missing:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
            for day in missing:
                for table in PARTITIONED_TABLES:
                    _create_partition(conn, table, day)
        self._days.update(missing)

    # -- queries ---------------------------------------------------------------------

    def latest(
        self,
        app_id: str,
        device_id: str,
        name: str,
        component: str | None = None,
        module_id: str | None = None,
    ) -> tuple[Any, datetime] | None:
        args = _field_args(app_id, device_id, name, component, module_id)
        rows = self._fetch(_LATEST, args)
        if not rows:
            return None
        ts, number, text = rows[0]
        return (number if text is None else orjson.loads(text)), ts.astimezone(UTC)

    def range(
        self,
        app_id: str,
        device_id: str,
        name: str,
        start: datetime,
        end: datetime,
        limit: int,
        component: str | None = None,
        module_id: str | None = None,
    ) -> list[tuple[datetime, Any]]:
        args = _field_args(app_id, device_id, name, component, module_id)
        args.update(start=_aware(start), end=_aware(end), limit=limit)
        rows = self._fetch(_RANGE, args)
        return [
            (ts.astimezone(UTC), number if text is None else orjson.loads(text))
            for ts, number, text, _ in rows
        ]

    def count_messages(self, app_id: str, device_id: str | None = None) -> int:
        if device_id is None:
            rows = self._fetch("SELECT count(*) FROM messages WHERE app_id = %s", [app_id])
        else:
            rows = self._fetch(
                "SELECT count(*) FROM messages WHERE app_id = %s AND device_id = %s",
                [app_id, device_id],
            )
        return int(rows[0][0])

    def message_ids(self, app_id: str) -> list[str]:
        rows = self._fetch(
            "SELECT message_id FROM messages WHERE app_id = %s AND message_id IS NOT NULL "
            "ORDER BY log_offset",
            [app_id],
        )
        return [r[0] for r in rows]

    def recent_message_keys(self, limit: int) -> list[tuple[str, str, str]]:
        rows = self._fetch(
            "SELECT app_id, device_id, message_id FROM messages WHERE message_id IS NOT NULL "
            "ORDER BY log_offset DESC LIMIT %s",
            [limit],
        )
        return [(a, d, m) for a, d, m in rows]

    def unmodeled(self, app_id: str, device_id: str) -> list[UnmodeledField]:
        rows = self._fetch(_UNMODELED, [app_id, device_id])
        return [
            UnmodeledField(c, m, n, r, int(k), ts.astimezone(UTC), orjson.loads(v))
            for c, m, n, r, k, ts, v in rows
        ]

    dialect = "postgres"  # of the SQL that ``query`` runs (aislehub.query.dialect)
    rollups = ("1m", "1h")  # the explorer's: telemetry_1m, telemetry_1h

    def query(
        self, statement: str, params: list[Any] | dict[str, Any]
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only statement (PostgreSQL SQL, ``%s`` parameters): names and rows."""
        with self._readers.connection() as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            rows = cur.fetchall() if cur.description else []
            return [d.name for d in cur.description or ()], rows

    # -- plumbing --------------------------------------------------------------------

    def _fetch(self, statement: str, params: list[Any] | dict[str, Any]) -> list[tuple[Any, ...]]:
        with self._readers.connection() as conn:
            return conn.execute(statement, params).fetchall()

    def _connect_reader(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self._conninfo,
            autocommit=True,
            options="-c TimeZone=UTC -c default_transaction_read_only=on",
        )

    def _writer_connection(self) -> psycopg.Connection[Any]:
        """The writer's connection (caller holds the write lock), reopened if it broke."""
        if self._closed:
            raise psycopg.InterfaceError("the telemetry store is closed")
        conn = self._writer
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            conn = psycopg.connect(
                self._conninfo, autocommit=True, options=f"-c TimeZone=UTC -c work_mem={_WORK_MEM}"
            )
            conn.execute(_STAGE)
            self._writer = conn
        return conn

    def close(self) -> None:
        with self._write_lock:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self._readers.close()


class _Replayed(Exception):
    """The batch's last offset is not above the consumer's committed one."""


class _Pool:
    """At most ``size`` connections, created on demand, handed to one thread at a time."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], size: int) -> None:
        self._connect = connect
        self._slots = threading.BoundedSemaphore(size)
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._all: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            try:
                yield conn
            finally:
                if conn.broken or conn.closed or self._closed:
                    conn.close()
                    with self._lock:
                        if conn in self._all:
                            self._all.remove(conn)
                else:
                    self._idle.put(conn)

    def _open(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise psycopg.InterfaceError("the telemetry store is closed")
        conn: psycopg.Connection[Any] = self._connect()
        with self._lock:
            self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._all:
                conn.close()
            self._all.clear()


# -- helpers ------------------------------------------------------------------------------


def _copy_table(cur: psycopg.Cursor[Any], name: str, table: pa.Table, types: list[str]) -> None:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(name), columns
    )
    with cur.copy(statement) as copy:
        copy.set_types(types)
        for row in zip(*(c.to_pylist() for c in table.columns), strict=True):
            copy.write_row(row)


def _partition_name(table: str, day: date) -> str:
    return f"{table}_p{day.year:04d}{day.month:02d}{day.day:02d}"


_PARTITION_NAME = re.compile(r"_p(\d{4})(\d{2})(\d{2})$")


def _day_of_partition(name: str) -> date | None:
    found = _PARTITION_NAME.search(name)
    return None if found is None else date(*(int(g) for g in found.groups()))


def _create_partition(conn: psycopg.Connection[Any], table: str, day: date) -> None:
    """Create one day's partition empty, then attach it (SHARE UPDATE EXCLUSIVE only)."""
    name = _partition_name(table, day)
    lower, upper = _start_of(day), _start_of(day + timedelta(days=1))
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()
    if exists is not None and exists[0]:
        return
    conn.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
            sql.Identifier(name), sql.Identifier(table)
        )
    )
    # Attaching scans the new table to check its rows fit: it is empty.
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(table),
            sql.Identifier(name),
            sql.Literal(lower.isoformat()),
            sql.Literal(upper.isoformat()),
        )
    )


def _drop_partition(conn: psycopg.Connection[Any], table: str, day: date) -> None:
    name = _partition_name(table, day)
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()
    if exists is None or not exists[0]:
        return
    conn.execute(
        sql.SQL("ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY").format(
            sql.Identifier(table), sql.Identifier(name)
        )
    )
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))


def _days_of(ts: pa.ChunkedArray) -> set[date]:
    if len(ts) == 0:
        return set()
    days: list[date] = pc.unique(ts.cast(pa.date32())).to_pylist()
    return set(days)


def _days_ahead(ahead: int) -> set[date]:
    today = datetime.now(UTC).date()
    return {today + timedelta(days=i) for i in range(ahead + 1)}


def _field_args(
    app_id: str, device_id: str, name: str, component: str | None, module_id: str | None
) -> dict[str, Any]:
    return {
        "app": app_id,
        "device": device_id,
        "name": name,
        "component": component,
        "module": module_id,
    }


def _start_of(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


def _aware(ts: datetime) -> datetime:
    """Naive arguments are taken as UTC, as the DuckDB store does."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts
