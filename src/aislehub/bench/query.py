"""``aislehub bench query``: ``/api/query`` statements beside hand-written SQL, same file.

Steps:

1. a DuckDB telemetry file in a temporary directory, laid out by the store itself, filled
   by DuckDB from ``range()``: ``rows`` numeric field rows (two fields per message,
   ``temperature`` and ``humidity``) from ``devices`` devices of one template, in time
   order over the last 7 days as ingest appends them; values are a fixed function of the
   message number, so every run holds the same data;
2. per statement, alternately: the full query path (parse, plan against the template,
   run through the store's reader, rows decoded into the API's objects) and the SQL a
   person would write for the same answer, literals inline, on the same store;
3. median and p95 of each, the ratio of the medians, and a check that both returned the
   same number of rows.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from aislehub.bench.stats import percentile
from aislehub.models import load_iot_central_template
from aislehub.query.iotc_query import parse_query
from aislehub.query.iotc_sql import TelemetryPlan, plan_query
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore

__all__ = ["QueryOptions", "render_query_table", "run_query_bench"]

APP = "bench"
TEMPLATE = "dtmi:aislehub:bench:Boiler;1"
SPAN = timedelta(days=7)
_CUT = "ts >= TIMESTAMP '{since}'"  # the 30-day default of an aggregate, as a literal
_DEVICES = (
    f"device_id IN (SELECT device_id FROM device_catalog WHERE app_id = '{APP}' "
    f"AND template_id = '{TEMPLATE}')"
)
_TEMPERATURE = (
    f"app_id = '{APP}' AND module_id IS NULL AND component IS NULL AND name = 'temperature'"
)


@dataclass(frozen=True, slots=True)
class Statement:
    name: str
    query: str
    sql: str  # hand-written; {since} / {day} are filled with literals at run time


STATEMENTS = (
    Statement(
        "latest_per_device",
        f"SELECT $id, LAST(temperature) FROM {TEMPLATE}",
        f"SELECT device_id, arg_max(value, ts) FROM telemetry_num WHERE {_TEMPERATURE} "
        f"AND {_CUT} AND {_DEVICES} GROUP BY device_id ORDER BY device_id LIMIT 10000",
    ),
    Statement(
        "windowed_avg_per_device",
        f"SELECT $id, AVG(temperature) FROM {TEMPLATE} WHERE WITHIN_WINDOW(P1D) "
        "GROUP BY WINDOW(PT1H)",
        "SELECT time_bucket(INTERVAL 1 HOUR, ts) AS w, device_id, avg(value) "
        f"FROM telemetry_num WHERE {_TEMPERATURE} AND ts >= TIMESTAMP '{{day}}' AND {_DEVICES} "
        "GROUP BY w, device_id ORDER BY w DESC, device_id LIMIT 10000",
    ),
    Statement(
        "top_devices_by_max",
        f"SELECT TOP 10 $id, MAX(temperature) AS peak FROM {TEMPLATE} ORDER BY peak DESC",
        f"SELECT device_id, max(value) AS peak FROM telemetry_num WHERE {_TEMPERATURE} "
        f"AND {_CUT} AND {_DEVICES} GROUP BY device_id ORDER BY peak DESC, device_id LIMIT 10",
    ),
    Statement(
        "raw_top_10000_where_value",
        f"SELECT TOP 10000 $id, $ts, temperature FROM {TEMPLATE} WHERE temperature > 29",
        f"SELECT device_id, ts, value FROM telemetry_num WHERE {_TEMPERATURE} AND value > 29 "
        f"AND {_DEVICES} ORDER BY ts DESC, device_id LIMIT 10000",
    ),
)


@dataclass(frozen=True, slots=True)
class QueryOptions:
    rows: int = 10_000_000
    devices: int = 1000
    repeat: int = 9
    threads: int = 2
    verbose: bool = True


def _template() -> dict[str, Any]:
    return {
        "@type": ["ModelDefinition", "DeviceModel"],
        "@context": ["dtmi:iotcentral:context;2", "dtmi:dtdl:context;2"],
        "displayName": "Bench boiler",
        "capabilityModel": {
            "@id": "dtmi:aislehub:bench:BoilerModel;1",
            "@type": "Interface",
            "contents": [
                {"@type": "Telemetry", "name": "temperature", "schema": "double"},
                {"@type": "Telemetry", "name": "humidity", "schema": "double"},
            ],
        },
    }


def run_query_bench(opts: QueryOptions) -> dict[str, Any]:
    """Build the data, time every statement both ways; figures as one dict."""
    work = Path(tempfile.mkdtemp(prefix="aislehub-bench-query-"))
    try:
        return _run_in(work, opts)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_in(work: Path, opts: QueryOptions) -> dict[str, Any]:
    say = _say if opts.verbose else _quiet
    path = work / "telemetry.duckdb"
    now = datetime.now(UTC).replace(microsecond=0)
    say(f"building {opts.rows:,} rows from {opts.devices:,} devices in {path}")
    started = time.perf_counter()
    DuckDBTelemetryStore(path).close()  # the store's own schema
    _fill(path, opts, now)
    build_s = time.perf_counter() - started
    parsed = load_iot_central_template(_template())
    model = parsed.models.root(parsed.root_id)
    store = DuckDBTelemetryStore(path, threads=opts.threads)
    figures: dict[str, Any] = {
        "rows": opts.rows,
        "devices": opts.devices,
        "repeat": opts.repeat,
        "threads": opts.threads,
        "build_s": round(build_s, 2),
        "statements": {},
    }
    try:
        for st in STATEMENTS:
            say(f"timing {st.name}")

            def ours(text: str = st.query) -> int:
                """What the route does: parse, plan, run, and join the rows' JSON texts."""
                plan = plan_query(parse_query(text), APP, model, {}, datetime.now(UTC))
                assert isinstance(plan, TelemetryPlan)
                _, rows = store.query(plan.json_sql, list(plan.params))
                body = '{"results":[' + ",".join(row[0] for row in rows) + "]}"
                return len(rows) if body else 0

            since = _naive(now - timedelta(days=30))
            day = _naive(now - timedelta(days=1))
            sql = st.sql.format(since=since, day=day)

            def hand(text: str = sql) -> int:
                return len(store.query(text, [])[1])

            figures["statements"][st.name] = _measure(ours, hand, opts.repeat) | {"query": st.query}
    finally:
        store.close()
    ratios = [s["ratio"] for s in figures["statements"].values()]
    figures["max_ratio"] = max(ratios)
    return figures


def _fill(path: Path, opts: QueryOptions, now: datetime) -> None:
    messages = max(1, opts.rows // 2)
    step_us = max(1, int(SPAN / timedelta(microseconds=1)) // messages)
    start = _naive(now - SPAN)
    con = duckdb.connect(str(path), config={"threads": opts.threads, "memory_limit": "2GB"})
    try:
        con.execute(
            "INSERT INTO device_catalog SELECT ?, 'dev-' || lpad(d::VARCHAR, 5, '0'), ?, "
            "true, false, true FROM range(?) t(d)",
            [APP, TEMPLATE, opts.devices],
        )
        # Message i: device i mod N, time start + i·step; temperature 21..30, a wave of
        # ~6 periods over the span plus per-message jitter, humidity 40..60. Ordered by
        # time, as ingest writes.
        con.execute(
            "INSERT INTO telemetry_num SELECT ?, 'dev-' || lpad((i % ?)::VARCHAR, 5, '0'), "
            "NULL, NULL, CASE WHEN j % 2 = 0 THEN 'temperature' ELSE 'humidity' END, "
            "?::TIMESTAMP + to_microseconds(i * ?), CASE WHEN j % 2 = 0 "
            "THEN 25 + 4 * sin(i * 40.0 / ?) + ((i * 7919) % 1000) / 1000.0 "
            "ELSE 50 + ((i * 104729) % 2000) / 100.0 END, i "
            "FROM (SELECT j, j // 2 AS i FROM range(?) r(j))",
            [APP, opts.devices, start, step_us, messages, messages * 2],
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _measure(ours: Callable[[], int], hand: Callable[[], int], repeat: int) -> dict[str, Any]:
    rows_ours, rows_hand = ours(), hand()  # warm-up, and the row counts to compare
    if rows_ours != rows_hand:
        raise RuntimeError(f"the query returned {rows_ours} rows, the SQL {rows_hand}")
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(repeat):
        for fn, times in ((ours, mine), (hand, theirs)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    ours_ms, hand_ms = statistics.median(mine) * 1000, statistics.median(theirs) * 1000
    return {
        "rows_returned": rows_ours,
        "aislehub_median_ms": round(ours_ms, 2),
        "aislehub_p95_ms": round((percentile(mine, 95) or 0) * 1000, 2),
        "sql_median_ms": round(hand_ms, 2),
        "sql_p95_ms": round((percentile(theirs, 95) or 0) * 1000, 2),
        "ratio": round(ours_ms / hand_ms, 3) if hand_ms else None,
    }


def render_query_table(figures: dict[str, Any]) -> str:
    head = (
        f"query: {figures['rows']:,} rows, {figures['devices']:,} devices, "
        f"{figures['repeat']} runs each, DuckDB threads {figures['threads']} "
        f"(built in {figures['build_s']} s)"
    )
    cols = ("rows", "ours p50", "ours p95", "SQL p50", "SQL p95", "ratio")
    lines = [head, "", f"{'':28}" + "".join(f"{c:>11}" for c in cols)]
    for name, s in figures["statements"].items():
        cells = (
            f"{s['rows_returned']:,}",
            f"{s['aislehub_median_ms']:.1f}",
            f"{s['aislehub_p95_ms']:.1f}",
            f"{s['sql_median_ms']:.1f}",
            f"{s['sql_p95_ms']:.1f}",
            f"{s['ratio']:.2f}",
        )
        lines.append(f"{name:28}" + "".join(f"{c:>11}" for c in cells))
    lines += ["", "times in ms; ratio = aislehub median / hand-written SQL median"]
    return "\n".join(lines)


def _naive(ts: datetime) -> str:
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def _say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _quiet(text: str) -> None:
    pass
