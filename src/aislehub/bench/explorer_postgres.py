"""``aislehub bench explorer --backend postgres``: the explorer query on the PostgreSQL
telemetry store, beside hand-written PostgreSQL SQL for the same cells.

Steps, after the embedded run (:mod:`aislehub.bench.explorer`) on the same install:

1. a fresh database (``AISLEHUB_BENCH_POSTGRES``-style admin URL, default the
   ``postgres`` database on 127.0.0.1:5432; C collation; dropped afterwards, whatever
   happens) with the store's own schema (:class:`PostgresTelemetryStore` creates it, with
   the day's partitions), filled from ``generate_series``: the same devices × seconds of
   ``temperature`` as the embedded file, one hour per statement on two connections; each
   statement also folds its rows into ``telemetry_1m`` and ``telemetry_1h`` with the
   ingest write's aggregation (count, sum, min, max per device, field and minute, and
   hour), from its own ``RETURNING`` rows (chunks are whole hours: no row is upserted twice);
   then ``VACUUM ANALYZE`` (the work autovacuum does after a load, done at once);
2. the same explorer query through the whole path (parse, plan for PostgreSQL, the store's
   reader pool, the columns aligned), alternately with the hand-written statement; medians,
   p95, the ratio and the same-cells check; and the plan PostgreSQL chose (``EXPLAIN``).
"""

from __future__ import annotations

import contextlib
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import sqlalchemy as sa

from aislehub.bench.stats import percentile
from aislehub.explorer import parse_explorer_query, run_explorer_query
from aislehub.explorer.planner import ResolvedScope, ResolvedSplit, plan_explorer_query
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore
from aislehub.store.metadata import MetadataStore
from aislehub.store.postgres_telemetry import PostgresTelemetryStore

__all__ = ["postgres_database", "run_postgres_explorer"]

_FILL = """
WITH raw AS (
    INSERT INTO telemetry_num
    SELECT %(app)s, 'd' || lpad(d::text, 4, '0'), NULL, NULL, 'temperature',
        %(day0)s::timestamptz + s * interval '1 second',
        20 + 5 * sin(s::float8 / 600 + d) + (d %% 37)::float8 / 10
            + ((s::int8 * 7919 + d::int8 * 104729) %% 1000)::float8 / 1000,
        s::int8 * %(devices)s + d
    FROM generate_series(%(first)s::int, %(last)s::int - 1) a(s),
        generate_series(0, %(devices)s::int - 1) b(d)
    RETURNING app_id, device_id, module_id, component, name, ts, value
), minutes AS (
    INSERT INTO telemetry_1m SELECT app_id, device_id, module_id, component, name,
        date_bin('1 minute', ts, timestamptz 'epoch'), count(*), sum(value), min(value),
        max(value)
    FROM raw GROUP BY 1, 2, 3, 4, 5, 6
)
INSERT INTO telemetry_1h SELECT app_id, device_id, module_id, component, name,
    date_bin('1 hour', ts, timestamptz 'epoch'), count(*), sum(value), min(value), max(value)
FROM raw GROUP BY 1, 2, 3, 4, 5, 6
"""


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database with the C collation for the block's duration; its libpq URL."""
    name = f"aislehub_bench_explorer_{secrets.token_hex(4)}"
    url = sa.make_url(admin_url).set(drivername="postgresql")
    admin = url.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
            "LC_COLLATE 'C' LC_CTYPE 'C'"
        )
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_postgres_explorer(
    admin_url: str,
    app_id: str,
    metadata_url: str,
    devices: int,
    hours: float,
    day0: datetime,
    repeat: int,
    hand_sql: Callable[[str, datetime, datetime], str],
    cells: Callable[[Any], set[tuple[Any, ...]]],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Fill a fresh database and time the explorer query on it; the figures."""
    with postgres_database(admin_url) as url:
        store = PostgresTelemetryStore(url)
        try:
            seconds = int(hours * 3600)
            end = day0 + timedelta(seconds=seconds)
            store.create_partitions(day0.date(), (end - timedelta(microseconds=1)).date())
            started = time.perf_counter()
            rows, rollup = _fill(url, app_id, devices, seconds, day0, say)
            figures: dict[str, Any] = {
                "rows": rows,
                "rollup_rows": rollup,
                "generate_s": round(time.perf_counter() - started, 1),
            }
            say(f"postgres: generated {rows:,} rows in {figures['generate_s']} s")
            figures |= _sizes(url)
            figures |= time_explorer(
                store, metadata_url, app_id, day0, end, repeat, hand_sql, cells
            )
            figures["plan"] = _plan(store, app_id, day0, end)
            say(
                f"postgres: explorer p50 {figures['explorer_p50_ms']} ms, "
                f"hand-written {figures['sql_p50_ms']} ms"
            )
        finally:
            store.close()
    return figures


def _fill(
    url: str, app_id: str, devices: int, seconds: int, day0: datetime, say: Callable[[str], None]
) -> tuple[int, int]:
    """Hour-long chunks on two connections (the machine's two cores), then VACUUM ANALYZE."""
    chunks = [(s, min(s + 3600, seconds)) for s in range(0, seconds, 3600)]
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            with psycopg.connect(url, autocommit=True, options=_LOAD_OPTIONS) as conn:
                while True:
                    with lock:
                        if not chunks or failures:
                            return
                        first, last = chunks.pop(0)
                    args = {"app": app_id, "day0": day0, "devices": devices}
                    conn.execute(_FILL, args | {"first": first, "last": last})
                    say(f"postgres: seconds {first:,}–{last:,} filled")
        except BaseException as exc:  # reported by the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=worker, name=f"fill-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) telemetry_1m")
        conn.execute("VACUUM (ANALYZE) telemetry_1h")
        conn.execute("VACUUM (ANALYZE) telemetry_num")
        rows = conn.execute("SELECT count(*) FROM telemetry_num").fetchone()
        rollup = conn.execute("SELECT count(*) FROM telemetry_1m").fetchone()
    assert rows is not None and rollup is not None
    return int(rows[0]), int(rollup[0])


# A bulk load: no need to wait for the WAL flush of each chunk (the data is generated).
_LOAD_OPTIONS = "-c TimeZone=UTC -c synchronous_commit=off -c work_mem=256MB"


def _sizes(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT pg_total_relation_size(c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            ["telemetry_num"],
        ).fetchall()
        rollup = conn.execute(
            "SELECT pg_total_relation_size(c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            ["telemetry_1m"],
        ).fetchall()
        hourly = conn.execute(
            "SELECT pg_total_relation_size(c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            ["telemetry_1h"],
        ).fetchall()
    return {
        "raw_mb": round(sum(int(r[0]) for r in found) / 2**20),
        "rollup_mb": round(sum(int(r[0]) for r in rollup) / 2**20),
        "rollup_1h_mb": round(sum(int(r[0]) for r in hourly) / 2**20, 1),
    }


def _body(day0: datetime, end: datetime) -> dict[str, Any]:
    return {"metric": "temperature", "aggregation": "max", "from": day0.isoformat(),
            "to": end.isoformat(), "grain": "PT1M", "splitBy": "device", "limit": 10}  # fmt: skip


def time_explorer(
    store: DuckDBTelemetryStore | PostgresTelemetryStore,
    metadata_url: str,
    app_id: str,
    day0: datetime,
    end: datetime,
    repeat: int,
    hand_sql: Callable[[str, datetime, datetime], str],
    cells: Callable[[Any], set[tuple[Any, ...]]],
) -> dict[str, Any]:
    """The explorer query through the whole path and ``hand_sql``'s statement for the same
    cells, timed alternately ``repeat`` times on ``store`` (either engine); their figures."""
    metadata = MetadataStore(metadata_url)
    body = _body(day0, end)
    hand = hand_sql(app_id, day0, end)
    ours: list[float] = []
    theirs: list[float] = []
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = run_explorer_query(parse_explorer_query(body), app_id, metadata, store)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _, rows = store.query(hand, [])
            theirs.append(time.perf_counter() - t0)
    finally:
        metadata.close()
    found = cells(result)
    hand_cells = {(t, s, float(v)) for t, s, v in rows}
    p50, ref = statistics.median(ours), statistics.median(theirs)
    return {
        "explorer_p50_ms": round(p50 * 1000, 1),
        "explorer_p95_ms": round((percentile(ours, 95) or 0.0) * 1000, 1),
        "sql_p50_ms": round(ref * 1000, 1),
        "sql_p95_ms": round((percentile(theirs, 95) or 0.0) * 1000, 1),
        "ratio": round(p50 / ref, 2),
        "cells": len(found),
        "same_cells": found == hand_cells,
    }


def _plan(store: PostgresTelemetryStore, app_id: str, day0: datetime, end: datetime) -> str:
    """PostgreSQL's plan for the explorer's statement: its nodes, one per line."""
    query = parse_explorer_query(_body(day0, end))
    hourly = "1h" in store.rollups
    plan = plan_explorer_query(
        query, app_id, ResolvedScope(), ResolvedSplit("device"), store.dialect, hourly
    )
    _, rows = store.query("EXPLAIN (COSTS OFF) " + plan.sql, plan.params)
    return "\n".join(str(r[0]) for r in rows)


def hand_sql_postgres(app_id: str, start: datetime, end: datetime) -> str:
    """The hand-written statement of :func:`aislehub.bench.explorer._hand_sql`, in
    PostgreSQL's SQL: the same cells from the same rollup table."""
    where = (
        f"app_id = '{app_id}' AND name = 'temperature' AND component IS NULL "
        f"AND module_id IS NULL AND minute >= timestamptz '{start.isoformat()}' "
        f"AND minute < timestamptz '{end.isoformat()}'"
    )
    ms = "CAST(floor(extract(epoch FROM minute) * 1000) AS int8)"
    return f"""
        WITH totals AS (SELECT device_id, max(max) AS total FROM telemetry_1m WHERE {where}
                        GROUP BY device_id),
        top AS (SELECT device_id, total FROM totals ORDER BY total DESC, device_id LIMIT 10),
        other AS (SELECT minute, max(max) AS value FROM telemetry_1m WHERE {where}
                  AND device_id NOT IN (SELECT device_id FROM top) GROUP BY minute)
        SELECT {ms}, device_id, max(max) FROM telemetry_1m
        WHERE {where} AND device_id IN (SELECT device_id FROM top) GROUP BY minute, device_id
        UNION ALL SELECT {ms}, NULL, value FROM other
        UNION ALL SELECT NULL, device_id, total FROM top
        UNION ALL SELECT NULL, NULL, max(value) FROM other
        UNION ALL SELECT NULL, '#members', count(*) - 10 FROM totals
    """


def say_to_stderr(verbose: bool) -> Callable[[str], None]:
    def say(text: str) -> None:
        if verbose:
            print(text, file=sys.stderr, flush=True)

    return say
