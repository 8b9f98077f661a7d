"""The embedded telemetry store: one DuckDB file.

Batches arrive as Arrow tables and are inserted with ``INSERT … SELECT`` from the
registered table, so DuckDB copies columns, not rows. The consumer offset is upserted in
the same transaction.

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
import pyarrow as pa

from aislehub.store.telemetry import TelemetryBatch

__all__ = ["DuckDBTelemetryStore"]

_KEYS = "app_id VARCHAR NOT NULL, device_id VARCHAR NOT NULL, module_id VARCHAR, component VARCHAR"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS telemetry_num (
    {_KEYS}, name VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, value DOUBLE);
CREATE TABLE IF NOT EXISTS telemetry_val (
    {_KEYS}, name VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, value JSON);
CREATE TABLE IF NOT EXISTS messages (
    {_KEYS}, ts TIMESTAMP NOT NULL, log_offset BIGINT NOT NULL, message_id VARCHAR,
    properties JSON, raw BLOB, valid_json BOOLEAN NOT NULL);
CREATE TABLE IF NOT EXISTS consumer_offsets (
    consumer VARCHAR PRIMARY KEY, log_offset BIGINT NOT NULL);
"""
# Every query below uses fetchall(): DuckDB 2 keeps a cursor busy until its result is
# exhausted, and a half-read result would block the next statement on that cursor.
# No secondary indexes: DuckDB's per-row-group min/max (zone maps) prune the scans of
# these append-ordered tables, and ART indexes would cost more on insert than they save.
_TABLES = (("telemetry_num", "numbers"), ("telemetry_val", "values"), ("messages", "messages"))
# Root component / the device itself are NULL; IS NOT DISTINCT FROM matches NULL to NULL.
_FIELD = (
    "app_id = ? AND device_id = ? AND name = ? "
    "AND component IS NOT DISTINCT FROM ? AND module_id IS NOT DISTINCT FROM ?"
)


class DuckDBTelemetryStore:
    """:class:`~aislehub.store.telemetry.TelemetryStore` on a DuckDB file (or ``:memory:``)."""

    def __init__(self, path: Path | str, threads: int | None = None) -> None:
        config: dict[str, str | bool | int | float | list[str]] = {}
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

    def write_batch(self, consumer: str, batch: TelemetryBatch, last_offset: int) -> bool:
        with self._write_lock:
            cur = self._writer
            cur.begin()
            try:
                if last_offset <= self._offset(cur, consumer):
                    cur.rollback()
                    return False
                for table, attr in _TABLES:
                    self._insert(cur, table, getattr(batch, attr))
                cur.execute(
                    "INSERT INTO consumer_offsets VALUES (?, ?) ON CONFLICT (consumer) "
                    "DO UPDATE SET log_offset = excluded.log_offset",
                    [consumer, last_offset],
                )
                cur.commit()
            except BaseException:
                with contextlib.suppress(duckdb.Error):  # the failed commit may have ended it
                    cur.rollback()
                raise
        return True

    @staticmethod
    def _insert(cur: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        cur.register("_batch", rows)
        try:
            cur.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _batch")
        finally:
            cur.unregister("_batch")

    def committed_offset(self, consumer: str) -> int:
        return self._offset(self._reader(), consumer)

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
        cur = self._reader()
        found: list[tuple[datetime, Any]] = []
        for table in ("telemetry_num", "telemetry_val"):
            rows = cur.execute(
                f"SELECT ts, value FROM {table} WHERE {_FIELD} ORDER BY ts DESC LIMIT 1", args
            ).fetchall()
            found += (_decode(table, row) for row in rows)
        if not found:
            return None
        ts, value = max(found, key=lambda r: r[0])
        return value, ts

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


def _decode(table: str, row: tuple[Any, ...]) -> tuple[datetime, Any]:
    ts, value = row
    if table == "telemetry_val" and value is not None:
        value = orjson.loads(value)
    return ts.replace(tzinfo=UTC), value


def _naive(ts: datetime) -> datetime:
    """TIMESTAMP columns hold UTC without a zone; naive arguments are taken as UTC."""
    return ts if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)
