"""The embedded telemetry store: one DuckDB file.

A batch arrives as one Arrow table, one row per message with the payload still bytes,
and one SQL script, one transaction, does the rest in DuckDB's vectorised engine (which
releases the GIL, so the gateway keeps the interpreter meanwhile):

1. ``_msg``: each message classified once, as ``object`` (its fields become rows),
   ``other`` (valid JSON that is not an object), ``deep`` (an object nested too deep to
   read back) or ``invalid`` (not UTF-8, not JSON);
2. ``messages``: one row per message, ``raw`` holding the payload unless it is an object;
3. ``_field``: the objects' top-level fields, unnested from two parallel lists
   (``json_keys``, ``json_extract(…, '$.*')``): several times cheaper than a lateral
   ``json_each``, which runs once per message;
4. ``telemetry_num`` / ``telemetry_val``: the fields split by JSON type;
5. ``telemetry_1m``: the numeric fields' one-minute rollup (count, sum, min, max), merged
   with the rows of the minutes the batch touches, which the metrics explorer reads for
   grains of a minute or more;
6. the consumer offset, upserted, and the counts returned. The two temporary tables stay
   until the next batch replaces them.

DuckDB's JSON reader is more lenient than RFC 8259: it takes ``NaN``, ``Infinity`` and
numbers beyond a double's range (as ±inf). Such payloads are classified ``invalid`` (kept
raw, as orjson and every strict reader would refuse them): a cheap regular expression
picks the payloads that might hold one, and only those are walked exactly (``$..*``).
It also takes trailing commas; those payloads are stored, re-serialized without them.

Thread model: DuckDB connection objects are not safe to share between threads, but
cursors (``con.cursor()``) are independent connections to the same database. The writer
has its own cursor behind a lock; each reader thread gets its own cursor on first use.
DuckDB's MVCC gives readers a consistent snapshot of committed batches only.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow.compute as pc

from aislehub.store.telemetry import BatchCounts, Catalog, TelemetryBatch, UnmodeledField

__all__ = ["DuckDBTelemetryStore"]

_KEYS = "app_id VARCHAR NOT NULL, device_id VARCHAR NOT NULL, module_id VARCHAR, component VARCHAR"
_FIELD_COLUMNS = f"{_KEYS}, name VARCHAR NOT NULL, ts TIMESTAMP NOT NULL"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS telemetry_num ({_FIELD_COLUMNS}, value DOUBLE, log_offset BIGINT);
CREATE TABLE IF NOT EXISTS telemetry_val ({_FIELD_COLUMNS}, value JSON, log_offset BIGINT);
CREATE TABLE IF NOT EXISTS telemetry_unmodeled (
    {_FIELD_COLUMNS}, value JSON, log_offset BIGINT, reason VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    {_KEYS}, ts TIMESTAMP NOT NULL, log_offset BIGINT NOT NULL, message_id VARCHAR,
    properties JSON, raw BLOB, valid_json BOOLEAN NOT NULL);
CREATE TABLE IF NOT EXISTS telemetry_1m (
    {_KEYS}, name VARCHAR NOT NULL, minute TIMESTAMP NOT NULL, count BIGINT NOT NULL,
    sum DOUBLE NOT NULL, min DOUBLE NOT NULL, max DOUBLE NOT NULL);
CREATE TABLE IF NOT EXISTS consumer_offsets (
    consumer VARCHAR PRIMARY KEY, log_offset BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS device_catalog (
    app_id VARCHAR NOT NULL, device_id VARCHAR NOT NULL, template_id VARCHAR,
    provisioned BOOLEAN NOT NULL, simulated BOOLEAN NOT NULL, enabled BOOLEAN NOT NULL);
CREATE TABLE IF NOT EXISTS template_fields (
    app_id VARCHAR NOT NULL, template_id VARCHAR NOT NULL, component VARCHAR NOT NULL,
    name VARCHAR NOT NULL, kind VARCHAR NOT NULL, enum_values VARCHAR[], unit VARCHAR,
    semantic_type VARCHAR);
ALTER TABLE telemetry_num ADD COLUMN IF NOT EXISTS log_offset BIGINT;
ALTER TABLE telemetry_val ADD COLUMN IF NOT EXISTS log_offset BIGINT;
"""
# Every query below uses fetchall(): DuckDB 2 keeps a cursor busy until its result is
# exhausted, and a half-read result would block the next statement on that cursor.
# No secondary indexes: DuckDB's per-row-group min/max (zone maps) prune the scans of
# these append-ordered tables, and ART indexes would cost more on insert than they save.

# -- the write: one script, one call --------------------------------------------------

# Could hold a non-finite number: NaN / Infinity (any case), an exponent of two or more
# digits, or 300 digits in a row. False positives only cost the exact walk after it.
_SUSPECT = r"regexp_matches(text, '(?i)nan|inf|e\+?\d\d|\d{300}')"
_NON_FINITE = (  # the payload itself (a bare number) or anything inside it
    "CASE WHEN json_type(text) = 'DOUBLE' THEN NOT isfinite(text::JSON::DOUBLE) "
    "ELSE list_bool_or(list_transform(json_extract(text, '$..*'), lambda x: "
    "CASE WHEN json_type(x) = 'DOUBLE' THEN NOT isfinite(x::DOUBLE) ELSE false END)) END"
)
# Objects nested deeper than orjson writes (254 levels) could not be read back through
# the API. Only a payload with that many brackets can be so deep: such a batch is
# rolled back and written again with the exact verdicts (``_too_deep``), so the common
# path stays one call.
_NEST_LIMIT = 254
_MAYBE_DEEP = (
    f"length(text) > {2 * _NEST_LIMIT + 1} "
    f"AND length(text) - length(replace(replace(text, '[', ''), '{{', '')) > {_NEST_LIMIT}"
)
_REPLAYED, _MAYBE_DEEP_FOUND = "aislehub: replayed batch", "aislehub: maybe too deep"
# CASE evaluates each branch only on the rows no earlier branch took, so json_type never
# sees text that is not JSON (it would raise, failing the batch on every retry).
_KIND = f"""CASE
    WHEN text IS NULL OR NOT json_valid(text) THEN 'invalid'
    WHEN {_SUSPECT} AND {_NON_FINITE} THEN 'invalid'
    WHEN json_type(text) <> 'OBJECT' THEN 'other'
    WHEN {_MAYBE_DEEP} THEN :deep:
    ELSE 'object' END"""
# The field values are minified JSON text, so the first character gives the type: a
# number starts with "-" or a digit (NaN and Infinity are ``invalid`` already). Cheaper
# than a third parse for json_type(text, '$.*').
_NUMBER = "(ascii(value) = 45 OR ascii(value) BETWEEN 48 AND 57)"
# Typed ingest: a field of a device with a template is checked against the kind its
# template declares (``template_fields``, kept in sync by :meth:`sync_catalog`): the JSON
# type, integral and range checks for integers, the lexical form of dates, times and
# durations, enum membership (values as JSON text), and the top-level shape of objects,
# maps, arrays and geometries (their members are checked where values are written
# through the API, not per telemetry row). A field that fits goes to the typed tables;
# one the template does not name (``unknown``) or that does not fit (``mistyped``) is
# kept in ``telemetry_unmodeled`` with the reason. A module's fields are checked against
# the module's Interface when the device's template declares the module (its rows in
# ``template_fields`` are keyed "<module>/<component>"); devices without a template, and
# modules their template does not declare, are stored by JSON type.
_INTEGRAL = "json_type(value) IN ('BIGINT', 'UBIGINT')"
_DATE = r"\d{4}-\d{2}-\d{2}"
_TIME = r"\d{2}:\d{2}:\d{2}(\.\d+)?"
_DATE_TIME = rf"{_DATE}[Tt]{_TIME}([Zz]|[+-]\d{{2}}:\d{{2}})"
# Every part optional, so "P", "PT" and a trailing "T" are refused separately.
_DURATION = r"P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?"
_NUMERIC_KINDS = "('double', 'float', 'integer', 'long')"
_JSON_NUMBER = "('DOUBLE', 'BIGINT', 'UBIGINT')"
_FITS = f"""CASE t.kind
    WHEN 'double' THEN {_NUMBER}
    WHEN 'float' THEN {_NUMBER} AND abs(TRY_CAST(value AS DOUBLE)) <= 3.4028234663852886e38
    WHEN 'integer' THEN {_INTEGRAL}
        AND TRY_CAST(value AS DOUBLE) BETWEEN -2147483648 AND 2147483647
    WHEN 'long' THEN {_INTEGRAL}
        AND TRY_CAST(value AS HUGEINT) BETWEEN -9223372036854775808 AND 9223372036854775807
    WHEN 'boolean' THEN value::VARCHAR IN ('true', 'false')
    WHEN 'string' THEN ascii(value) = 34
    WHEN 'date' THEN regexp_full_match(value::VARCHAR, '"{_DATE}"')
    WHEN 'time' THEN regexp_full_match(value::VARCHAR, '"{_TIME}"')
    WHEN 'dateTime' THEN regexp_full_match(value::VARCHAR, '"{_DATE_TIME}"')
    WHEN 'duration' THEN regexp_full_match(value::VARCHAR, '"{_DURATION}"')
        AND value::VARCHAR NOT IN ('"P"', '"PT"') AND NOT ends_with(value::VARCHAR, 'T"')
    WHEN 'enum' THEN list_contains(t.enum_values, value::VARCHAR)
    WHEN 'object' THEN ascii(value) = 123
    WHEN 'map' THEN ascii(value) = 123
    WHEN 'array' THEN ascii(value) = 91
    WHEN 'geopoint' THEN ascii(value) = 123 AND (json_type(value, '$.coordinates') = 'ARRAY'
        OR (json_type(value, '$.lat') IN {_JSON_NUMBER}
            AND json_type(value, '$.lon') IN {_JSON_NUMBER}))
    WHEN 'geometry' THEN ascii(value) = 123 AND json_type(value, '$.type') = 'VARCHAR'
    ELSE false END"""
# Under load the event loop holds the GIL, and every statement DuckDB runs for Python
# hands the GIL back and waits up to ``sys.getswitchinterval()`` (5 ms) to get it again:
# so the whole write is one script, and the checks that abort it are error() calls in
# it (their messages are not constants, which DuckDB would fold and raise at once).
# Literals, not parameters: DuckDB binds parameters to the last statement only. The
# offset's SET expression is also evaluated for a first insert, hence the IS NULL.
# The one-minute rollup (count, sum, min, max per field and minute; the PostgreSQL store's
# shape), kept exact by merging: the batch's minutes are aggregated, the rows it touches
# (only minutes from the batch's first one, a literal so zone maps prune the scan) are
# read, deleted and written back combined. One row per field and minute, whatever the
# batch size; a replayed batch never gets here (its offset check aborts the script).
_KEY_MATCH = (
    "t.app_id = n.app_id AND t.device_id = n.device_id AND t.name = n.name "
    "AND t.minute = n.minute AND t.module_id IS NOT DISTINCT FROM n.module_id "
    "AND t.component IS NOT DISTINCT FROM n.component"
)
_ROLLUP = f"""
CREATE OR REPLACE TEMP TABLE _minute AS SELECT app_id, device_id, module_id, component, name,
    time_bucket(INTERVAL 1 MINUTE, ts) AS minute, count(*) AS count, sum(v) AS sum,
    min(v) AS min, max(v) AS max
FROM (SELECT *, value::DOUBLE AS v FROM _field WHERE dest = 'num') GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE _minute_old AS SELECT t.* FROM telemetry_1m t
    SEMI JOIN _minute n ON {_KEY_MATCH} WHERE t.minute >= :since:;
DELETE FROM telemetry_1m t USING _minute n WHERE t.minute >= :since: AND {_KEY_MATCH};
INSERT INTO telemetry_1m SELECT app_id, device_id, module_id, component, name, minute,
    sum(count), sum(sum), min(min), max(max)
FROM (SELECT * FROM _minute UNION ALL SELECT * FROM _minute_old) GROUP BY ALL;
"""
_WRITE = f"""
BEGIN TRANSACTION;
CREATE OR REPLACE TEMP TABLE _msg AS SELECT *, {_KIND} AS kind
FROM (SELECT *, try(decode(payload)) AS text FROM _batch);
INSERT INTO messages SELECT app_id, device_id, module_id, component, ts, log_offset,
    message_id, properties,
    CASE kind WHEN 'object' THEN NULL
        WHEN 'object?' THEN error('{_MAYBE_DEEP_FOUND} at ' || log_offset) ELSE payload END,
    kind <> 'invalid'
FROM _msg;
CREATE OR REPLACE TEMP TABLE _field AS SELECT f.*, CASE
    WHEN f.template_id IS NULL THEN CASE WHEN {_NUMBER} THEN 'num' ELSE 'val' END
    WHEN t.kind IS NULL THEN 'unknown'
    WHEN {_FITS} THEN CASE WHEN t.kind IN {_NUMERIC_KINDS} THEN 'num' ELSE 'val' END
    ELSE 'mistyped' END AS dest
FROM (SELECT m.app_id, m.device_id, m.module_id, m.component, m.ts, m.log_offset,
        CASE WHEN m.module_id IS NULL OR mm.module IS NOT NULL THEN d.template_id END
            AS template_id,
        unnest(json_keys(m.text)) AS name, unnest(json_extract(m.text, '$.*')) AS value
    FROM _msg m
    LEFT JOIN device_catalog d ON d.app_id = m.app_id AND d.device_id = m.device_id
    LEFT JOIN (SELECT DISTINCT app_id, template_id, split_part(component, '/', 1) AS module
        FROM template_fields WHERE contains(component, '/')) mm
        ON mm.app_id = d.app_id AND mm.template_id = d.template_id AND mm.module = m.module_id
    WHERE m.kind = 'object') f
LEFT JOIN template_fields t ON t.app_id = f.app_id AND t.template_id = f.template_id
    AND t.name = f.name AND t.component = CASE WHEN f.module_id IS NULL
        THEN coalesce(f.component, '') ELSE f.module_id || '/' || coalesce(f.component, '') END;
INSERT INTO telemetry_num SELECT app_id, device_id, module_id, component, name, ts,
    value::DOUBLE, log_offset FROM _field WHERE dest = 'num';
INSERT INTO telemetry_val SELECT app_id, device_id, module_id, component, name, ts, value,
    log_offset FROM _field WHERE dest = 'val';
{_ROLLUP}
INSERT INTO telemetry_unmodeled SELECT app_id, device_id, module_id, component, name, ts,
    value, log_offset, dest FROM _field WHERE dest IN ('unknown', 'mistyped');
INSERT INTO consumer_offsets VALUES (:consumer:, :last:) ON CONFLICT (consumer)
DO UPDATE SET log_offset = CASE WHEN consumer_offsets.log_offset IS NULL
        OR excluded.log_offset > consumer_offsets.log_offset THEN excluded.log_offset
    ELSE error('{_REPLAYED}, committed ' || consumer_offsets.log_offset) END;
COMMIT;
SELECT count(*) FILTER (WHERE kind = 'invalid'), count(*) FILTER (WHERE kind = 'other'),
    count(*) FILTER (WHERE kind = 'deep'),
    (SELECT count(*) FILTER (WHERE dest = 'num') FROM _field),
    (SELECT count(*) FILTER (WHERE dest = 'val') FROM _field),
    (SELECT count(*) FILTER (WHERE dest = 'unknown') FROM _field),
    (SELECT count(*) FILTER (WHERE dest = 'mistyped') FROM _field)
FROM _msg;
"""


def _write_script(
    consumer: str, last_offset: int, deep: list[int] | None, since: datetime | None = None
) -> str:
    """The write for one batch; ``deep``: exact verdicts for the ``object?`` payloads;
    ``since``: the batch's earliest timestamp (bounds the rollup rows it may touch)."""
    kind = "'object?'"  # unknown: abort, check in Python, write again
    if deep is not None:
        found = ", ".join(str(int(offset)) for offset in deep) or "NULL"
        kind = f"CASE WHEN log_offset IN ({found}) THEN 'deep' ELSE 'object' END"
    script = _WRITE.replace(":deep:", kind).replace(":consumer:", _literal(consumer))
    first = (since or datetime(1970, 1, 1)).replace(second=0, microsecond=0, tzinfo=None)
    script = script.replace(":since:", f"TIMESTAMP '{first.isoformat(sep=' ')}'")
    return script.replace(":last:", str(int(last_offset)))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"  # DuckDB strings have no backslash escapes


# Both tables at once: a batch typed by half a catalog would misfile fields.
_SYNC_CATALOG = """
BEGIN TRANSACTION;
DELETE FROM device_catalog;
INSERT INTO device_catalog SELECT * FROM _devices;
DELETE FROM template_fields;
INSERT INTO template_fields SELECT * FROM _fields;
COMMIT;
"""

# -- queries ---------------------------------------------------------------------

# Root component / the device itself are NULL; IS NOT DISTINCT FROM matches NULL to NULL.
_FIELD = (
    "app_id = ? AND device_id = ? AND name = ? "
    "AND component IS NOT DISTINCT FROM ? AND module_id IS NOT DISTINCT FROM ?"
)
# No summary table: for ORDER BY ts DESC LIMIT 1, DuckDB visits the row groups newest
# first by their ts min/max and stops early, so each branch costs ~5 ms with 1M or 10M
# rows (2-core reference machine); only a field never sent scans everything. One
# statement for both tables: each statement from a worker thread has to win the GIL
# back from the gateway's loop.
_LATEST = f"""
SELECT * FROM (
    (SELECT ts, value, NULL::VARCHAR FROM telemetry_num WHERE {_FIELD}
     ORDER BY ts DESC LIMIT 1)
    UNION ALL
    (SELECT ts, NULL::DOUBLE, value::VARCHAR FROM telemetry_val WHERE {_FIELD}
     ORDER BY ts DESC LIMIT 1)
) ORDER BY 1 DESC LIMIT 1
"""


class DuckDBTelemetryStore:
    """:class:`~aislehub.store.telemetry.TelemetryStore` on a DuckDB file (or ``:memory:``).

    ``memory_limit`` caps DuckDB's buffer pool (its default is 80 % of the machine's RAM,
    too much beside a gateway); ``checkpoint_threshold`` is the write-ahead log size that
    triggers a checkpoint. DuckDB's default, 16 MB, is less than two 20,000-record
    batches, and each checkpoint rewrites the tables' last, partly filled row groups:
    40 such batches spent 8.3 s committing with it, 5.5 s with 64 MB, whose checkpoints
    still take under a second each on the 2-core reference machine (256 MB: 2 s).
    """

    def __init__(
        self,
        path: Path | str,
        threads: int | None = None,
        memory_limit: str = "1GB",
        checkpoint_threshold: str = "64MB",
    ) -> None:
        config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": memory_limit,
            "checkpoint_threshold": checkpoint_threshold,
        }
        if threads is not None:
            config["threads"] = threads
        self._db = duckdb.connect(str(path), config=config)
        self._db.execute(_SCHEMA)
        self._writer = self._db.cursor()
        self._write_lock = threading.Lock()
        self._cursor_lock = threading.Lock()  # guards cursor creation on the shared parent
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = [self._writer]

    # -- write side ------------------------------------------------------------------

    def write_batch(
        self, consumer: str, batch: TelemetryBatch, last_offset: int
    ) -> BatchCounts | None:
        with self._write_lock:
            cur = self._writer
            cur.register("_batch", batch.messages)  # replaced by the next batch's
            since = _earliest(batch)
            try:
                try:
                    row = _run(cur, _write_script(consumer, last_offset, None, since))
                except _MaybeDeep:
                    deep = _deep_offsets(batch)
                    row = _run(cur, _write_script(consumer, last_offset, deep, since))
            except _Replayed:
                return None
        return BatchCounts(len(batch), *row)

    def committed_offset(self, consumer: str) -> int:
        return self._offset(self._reader(), consumer)

    def sync_catalog(self, catalog: Catalog) -> None:
        with self._write_lock:
            cur = self._writer
            cur.register("_devices", catalog.devices)
            cur.register("_fields", catalog.fields)
            try:
                cur.execute(_SYNC_CATALOG).fetchall()
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    cur.rollback()
                raise
            finally:
                cur.unregister("_devices")
                cur.unregister("_fields")

    @staticmethod
    def _offset(cur: duckdb.DuckDBPyConnection, consumer: str) -> int:
        rows = cur.execute(
            "SELECT log_offset FROM consumer_offsets WHERE consumer = ?", [consumer]
        ).fetchall()
        return int(rows[0][0]) if rows else -1

    # -- queries ---------------------------------------------------------------------

    def latest(
        self,
        app_id: str,
        device_id: str,
        name: str,
        component: str | None = None,
        module_id: str | None = None,
    ) -> tuple[Any, datetime] | None:
        args = [app_id, device_id, name, component, module_id]
        rows = self._reader().execute(_LATEST, args + args).fetchall()
        if not rows:
            return None
        ts, number, text = rows[0]
        return (number if text is None else orjson.loads(text)), ts.replace(tzinfo=UTC)

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
        # A field has one type in practice, but a device may change it; the UNION keeps
        # both kinds, with numbers as JSON text so that one column holds either.
        sql = (
            f"SELECT ts, value::VARCHAR FROM telemetry_num WHERE {_FIELD} AND ts >= ? AND ts < ? "
            f"UNION ALL SELECT ts, value::VARCHAR FROM telemetry_val WHERE {_FIELD} "
            "AND ts >= ? AND ts < ? ORDER BY ts LIMIT ?"
        )
        window = [app_id, device_id, name, component, module_id, _naive(start), _naive(end)]
        rows = self._reader().execute(sql, [*window, *window, limit]).fetchall()
        return [_decode("telemetry_val", row) for row in rows]

    def count_messages(self, app_id: str, device_id: str | None = None) -> int:
        sql = "SELECT count(*) FROM messages WHERE app_id = ?"
        args = [app_id]
        if device_id is not None:
            sql += " AND device_id = ?"
            args.append(device_id)
        return int(self._reader().execute(sql, args).fetchall()[0][0])

    def message_ids(self, app_id: str) -> list[str]:
        rows = (
            self._reader()
            .execute(
                "SELECT message_id FROM messages WHERE app_id = ? AND message_id IS NOT NULL "
                "ORDER BY log_offset",
                [app_id],
            )
            .fetchall()
        )
        return [r[0] for r in rows]

    def recent_message_keys(self, limit: int) -> list[tuple[str, str, str]]:
        rows = (
            self._reader()
            .execute(
                "SELECT app_id, device_id, message_id FROM messages WHERE message_id IS NOT NULL "
                "ORDER BY log_offset DESC LIMIT ?",
                [limit],
            )
            .fetchall()
        )
        return [(a, d, m) for a, d, m in rows]

    def unmodeled(self, app_id: str, device_id: str) -> list[UnmodeledField]:
        rows = (
            self._reader()
            .execute(
                "SELECT component, module_id, name, reason, count(*), max(ts), "
                "arg_max(value, ts)::VARCHAR FROM telemetry_unmodeled "
                "WHERE app_id = ? AND device_id = ? "
                "GROUP BY component, module_id, name, reason ORDER BY name, component, reason",
                [app_id, device_id],
            )
            .fetchall()
        )
        return [
            UnmodeledField(c, m, n, r, int(k), ts.replace(tzinfo=UTC), orjson.loads(v))
            for c, m, n, r, k, ts, v in rows
        ]

    dialect = "duckdb"  # of the SQL that ``query`` runs

    def query(self, sql: str, params: list[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only statement on this thread's cursor: column names and rows."""
        cur = self._reader()
        rows = cur.execute(sql, params).fetchall()
        return [d[0] for d in cur.description or ()], rows

    # -- plumbing --------------------------------------------------------------------

    def _reader(self) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            with self._cursor_lock:
                cur = self._db.cursor()
                self._cursors.append(cur)
            self._local.cursor = cur
        return cur

    def close(self) -> None:
        with self._write_lock, self._cursor_lock:
            for cur in self._cursors:
                cur.close()
            self._cursors.clear()
            self._db.close()


class _Replayed(Exception):
    """The batch's last offset is not above the consumer's committed one."""


class _MaybeDeep(Exception):
    """A payload might be nested too deep: write again with exact verdicts."""


def _run(cur: duckdb.DuckDBPyConnection, script: str) -> tuple[int, ...]:
    """Run a write script; on any failure roll back, then say why."""
    try:
        row: tuple[int, ...] = cur.execute(script).fetchall()[0]
    except BaseException as exc:
        with contextlib.suppress(duckdb.Error):  # the failure may have ended it already
            cur.rollback()
        if isinstance(exc, duckdb.Error) and _REPLAYED in str(exc):
            raise _Replayed from exc
        if isinstance(exc, duckdb.Error) and _MAYBE_DEEP_FOUND in str(exc):
            raise _MaybeDeep from exc
        raise
    return row


def _earliest(batch: TelemetryBatch) -> datetime | None:
    if "ts" not in batch.messages.column_names:
        return None  # not a batch: the script fails on it and says why
    earliest = pc.min(batch.messages.column("ts")).as_py()
    return earliest if isinstance(earliest, datetime) else None


def _deep_offsets(batch: TelemetryBatch) -> list[int]:
    """Log offsets of the payloads nested too deep; the slow path, so in Python."""
    rows = batch.messages.select(["log_offset", "payload"]).to_pylist()
    return [row["log_offset"] for row in rows if _too_deep(row["payload"])]


def _too_deep(payload: bytes) -> bool:
    if len(payload) <= 2 * _NEST_LIMIT + 1:
        return False
    try:
        orjson.dumps(orjson.loads(payload))  # reads 1024 levels, writes only 254
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return True
    return False


def _decode(table: str, row: tuple[Any, ...]) -> tuple[datetime, Any]:
    ts, value = row
    if table == "telemetry_val" and value is not None:
        value = orjson.loads(value)
    return ts.replace(tzinfo=UTC), value


def _naive(ts: datetime) -> datetime:
    """TIMESTAMP columns hold UTC without a zone; naive arguments are taken as UTC."""
    return ts if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)
