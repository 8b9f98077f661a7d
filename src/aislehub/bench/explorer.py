"""``aislehub bench explorer``: the metrics explorer beside hand-written SQL, and a chart of
10 M raw points to first paint in headless Chromium.

Steps:

1. an install (``aislehub init``) whose DuckDB telemetry file is filled straight from
   ``range()``: ``devices`` × ``hours`` × 3600 one-second readings of ``temperature``
   (86.4 M rows at the defaults), then the one-minute rollup built with the ingest write's
   aggregation (count, sum, min, max per device, field and minute);
2. the explorer query "max of temperature per minute over the day, split by device, top 10
   by max, the rest as other" run through the whole query path (parse, plan, run, align
   the columns), alternately with the SQL a person would write for the same answer on the
   same store (the series, the legend's totals and the number of devices in "other",
   fetched as rows); medians, p95 and the ratio, and a check that both give the same
   cells, value for value;
3. with ``--browser``: the server started on that install, a user signed in through
   Playwright in Debian's Chromium, and the explorer page opened on a shared URL of a raw
   chart over ``chart_points`` raw points (min/max downsampled per pixel): time from
   navigation start to uPlot's first draw, in the page's own clock, and its steps (page
   and scripts, server, transfer, JSON parsing, drawing);
4. with ``backend="postgres"``: the same data in a fresh PostgreSQL database and the same
   query timed there beside hand-written PostgreSQL SQL
   (:mod:`aislehub.bench.explorer_postgres`), reported beside the embedded figures.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aislehub.bench.explorer_postgres import (
    hand_sql_postgres,
    run_postgres_explorer,
    say_to_stderr,
    time_explorer,
)
from aislehub.bench.scale import POSTGRES_ADMIN
from aislehub.settings import load_settings
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore

__all__ = ["ExplorerOptions", "render_explorer_table", "run_explorer_bench"]

DAY0 = datetime(2025, 1, 6, tzinfo=UTC)
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExplorerOptions:
    devices: int = 1000
    hours: float = 24.0
    repeat: int = 9
    chart_points: int = 10_000_000
    paints: int = 5
    browser: bool = True
    verbose: bool = True
    backend: str = "embedded"  # or "postgres": the embedded run, then PostgreSQL's
    postgres_admin: str = POSTGRES_ADMIN  # where the PostgreSQL run creates its database


def _say(opts: ExplorerOptions, text: str) -> None:
    if opts.verbose:
        print(text, file=sys.stderr, flush=True)


def run_explorer_bench(opts: ExplorerOptions) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="aislehub-bench-explorer-"))
    try:
        return _run_in(work, opts)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_in(work: Path, opts: ExplorerOptions) -> dict[str, Any]:
    data_dir = work / "install"
    init = _cli("init", "--data-dir", str(data_dir), "--hostname", "127.0.0.1")
    app_id = json.loads(init)["appId"]
    settings = load_settings(data_dir)
    seconds = int(opts.hours * 3600)
    started = time.perf_counter()
    rows = _generate(settings.telemetry_path, app_id, opts.devices, seconds)
    figures: dict[str, Any] = {
        "devices": opts.devices,
        "rows": rows,
        "generate_s": round(time.perf_counter() - started, 1),
    }
    _say(opts, f"generated {rows:,} rows in {figures['generate_s']} s")
    figures |= _time_queries(settings.telemetry_path, settings.metadata_url, app_id, opts)
    if opts.browser:
        figures |= _first_paint(data_dir, app_id, opts)
    if opts.backend == "postgres":
        figures["postgres"] = run_postgres_explorer(
            opts.postgres_admin,
            app_id,
            settings.metadata_url,
            opts.devices,
            opts.hours,
            DAY0,
            opts.repeat,
            hand_sql_postgres,
            _cells,
            say_to_stderr(opts.verbose),
        )
    return figures


def _cli(*args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "aislehub.cli", *args],
        input=stdin,
        capture_output=True,
        check=True,
        timeout=120,
    )
    return done.stdout.decode()


def _generate(path: Path, app_id: str, devices: int, seconds: int) -> int:
    store = DuckDBTelemetryStore(path, memory_limit="6GB")
    try:
        day0 = DAY0.replace(tzinfo=None)
        sql = f"""
            INSERT INTO telemetry_num
            SELECT '{app_id}', 'd' || lpad(d::VARCHAR, 4, '0'), NULL, NULL, 'temperature',
                TIMESTAMP '{day0}' + to_seconds(s),
                20 + 5 * sin(s / 600 + d) + (d % 37) / 10 + ((s * 7919 + d * 104729) % 1000) / 1000,
                s * {devices} + d
            FROM range({seconds}) a(s), range({devices}) b(d);
            INSERT INTO telemetry_1m SELECT app_id, device_id, module_id, component, name,
                time_bucket(INTERVAL 1 MINUTE, ts), count(*), sum(value), min(value), max(value)
            FROM telemetry_num GROUP BY ALL;
            CHECKPOINT;
        """
        store.query(sql, [])
        return int(store.query("SELECT count(*) FROM telemetry_num", [])[1][0][0])
    finally:
        store.close()


def _hand_sql(app_id: str, start: datetime, end: datetime) -> str:
    """What a person would write for the same cells: each kept device's maxima per minute,
    "other" (the devices outside the top 10) per minute, the legend (each series' total)
    and how many devices "other" holds."""
    where = (
        f"app_id = '{app_id}' AND name = 'temperature' AND component IS NULL "
        f"AND module_id IS NULL AND minute >= TIMESTAMP '{start}' AND minute < TIMESTAMP '{end}'"
    )
    return f"""
        WITH totals AS (SELECT device_id, max(max) AS total FROM telemetry_1m WHERE {where}
                        GROUP BY device_id),
        top AS (SELECT device_id, total FROM totals ORDER BY total DESC, device_id LIMIT 10),
        other AS (SELECT minute, max(max) AS value FROM telemetry_1m WHERE {where}
                  AND device_id NOT IN (SELECT device_id FROM top) GROUP BY minute)
        SELECT epoch_ms(minute), device_id, max(max) FROM telemetry_1m
        WHERE {where} AND device_id IN (SELECT device_id FROM top) GROUP BY ALL
        UNION ALL SELECT epoch_ms(minute), NULL, value FROM other
        UNION ALL SELECT NULL, device_id, total FROM top
        UNION ALL SELECT NULL, NULL, max(value) FROM other
        UNION ALL SELECT NULL, '#members', count(*) - 10 FROM totals
    """


def _cells(result: Any) -> set[tuple[Any, ...]]:
    """An explorer answer as the hand-written query's rows: (time, series, value), the
    legend's totals without a time and the count of devices folded into "other"."""
    cells: set[tuple[Any, ...]] = set()
    for series, column in zip(result.series, result.values, strict=True):
        name = None if series.other else series.name
        cells.update(
            (t, name, v) for t, v in zip(result.time, column, strict=True) if v is not None
        )
        cells.add((None, name, series.total))
        if series.other:
            cells.add((None, "#members", float(series.members)))
    return cells


def _time_queries(
    path: Path, metadata_url: str, app_id: str, opts: ExplorerOptions
) -> dict[str, Any]:
    store = DuckDBTelemetryStore(path, threads=2)
    end = DAY0 + timedelta(hours=opts.hours)
    try:
        figures = time_explorer(
            store, metadata_url, app_id, DAY0, end, opts.repeat, _hand_sql_naive, _cells
        )
    finally:
        store.close()
    _say(
        opts,
        f"explorer p50 {figures['explorer_p50_ms']:.0f} ms, "
        f"hand-written {figures['sql_p50_ms']:.0f} ms",
    )
    return figures


def _hand_sql_naive(app_id: str, start: datetime, end: datetime) -> str:
    """The DuckDB statement over naive UTC timestamps (its TIMESTAMP columns)."""
    return _hand_sql(app_id, start.replace(tzinfo=None), end.replace(tzinfo=None))


def _first_paint(data_dir: Path, app_id: str, opts: ExplorerOptions) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    password = "bench-explorer-password"
    _cli("user", "create", "bench", "--password-stdin", "--data-dir", str(data_dir),
         stdin=password.encode() + b"\n")  # fmt: skip
    # An address of its own: the server also listens on 8883, maybe taken on 127.0.0.1.
    host = f"127.0.{random.randrange(100, 250)}.{random.randrange(2, 250)}"
    port = _free_port(host)
    server = subprocess.Popen(
        [sys.executable, "-m", "aislehub.cli", "serve", "--data-dir", str(data_dir),
         "--bind", host, "--http-port", str(port), "--plain-mqtt-port", str(_free_port(host))],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        if not server.stdout.readline().startswith(b"ready"):
            raise RuntimeError("the server did not start")
        per_device = int(opts.hours * 3600)
        chart_devices = max(1, min(opts.devices, -(-opts.chart_points // per_device)))
        scope = [f"d{d:04d}" for d in range(chart_devices)]
        end = DAY0 + timedelta(hours=opts.hours)
        query: dict[str, Any] = {"metric": "temperature", "aggregation": "max", "mode": "raw",
                 "from": DAY0.isoformat(), "to": end.isoformat()}  # fmt: skip
        query["scope"] = {"devices": scope}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            page = browser.new_page(base_url=f"http://{host}:{port}")
            page.set_default_timeout(120_000)
            page.goto("/login")
            page.fill("input[name=username]", "bench")
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url("**/")
            paints = []
            steps: dict[str, list[float]] = {}
            for _ in range(opts.paints):
                page.goto("/explorer?q=" + quote(json.dumps(query)))
                page.wait_for_function("window.__explorerFirstPaint != null")
                paints.append(page.evaluate("window.__explorerFirstPaint"))
                for name, ms in page.evaluate(_STEPS).items():
                    steps.setdefault(name, []).append(ms)
            points = page.evaluate("window.__explorerTimings.points")
            size = page.evaluate("window.__explorerTimings.bytes")
            browser.close()
    finally:
        server.terminate()
        server.wait(60)
        if server.stdout is not None:
            server.stdout.close()
    first = statistics.median(paints)
    _say(opts, f"{chart_devices * per_device:,} raw points: first paint {first:.0f} ms")
    return {
        "chart_raw_points": chart_devices * per_device,
        "chart_drawn_points": points,
        "chart_bytes": size,
        "first_paint_ms": round(first, 1),
        "first_paint_steps_ms": {k: round(statistics.median(v), 1) for k, v in steps.items()},
    }


# The first paint's steps, from the page's clock: the page and its scripts up to the
# query's request, the server (request to first byte: the query's run and encoding), the
# body's transfer, JSON parsing, and uPlot from the parsed answer to its first draw.
_STEPS = """(() => {
  const t = window.__explorerTimings;
  const nav = performance.getEntriesByType("navigation")[0];
  return {page: t.started, dom_ready: nav.domContentLoadedEventEnd, server: t.server,
          transfer: t.transfer, parse: t.parsed,
          draw: window.__explorerFirstPaint - t.started - t.fetched - t.parsed};
})()"""


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def render_explorer_table(figures: dict[str, Any]) -> str:
    lines = [
        f"data      {figures['rows']:,} rows from {figures['devices']:,} devices "
        f"(generated in {figures['generate_s']} s)",
        f"explorer  split by device, top 10 by max, 1-minute series: "
        f"p50 {figures['explorer_p50_ms']} ms, p95 {figures['explorer_p95_ms']} ms",
        f"sql       hand-written on the same rollup: p50 {figures['sql_p50_ms']} ms, "
        f"p95 {figures['sql_p95_ms']} ms",
        f"ratio     {figures['ratio']} (target <= 1.3; same cells: {figures['same_cells']})",
    ]
    if "first_paint_ms" in figures:
        lines.append(
            f"chart     {figures['chart_raw_points']:,} raw points → "
            f"{figures['chart_drawn_points']:,} drawn, first paint {figures['first_paint_ms']} ms "
            "(target < 1000)"
        )
        steps = ", ".join(f"{k} {v}" for k, v in figures["first_paint_steps_ms"].items())
        lines.append(f"          steps (ms, medians): {steps}")
    if "postgres" in figures:
        lines.extend(_postgres_lines(figures["postgres"]))
    return "\n".join(lines)


def _postgres_lines(pg: dict[str, Any]) -> list[str]:
    return [
        "PostgreSQL (the same data and query, telemetry_1m day partition):",
        f"data      {pg['rows']:,} rows, {pg['rollup_rows']:,} rollup rows "
        f"({pg['raw_mb']:,} MB raw, {pg['rollup_mb']:,} MB rollup; "
        f"generated in {pg['generate_s']} s)",
        f"explorer  p50 {pg['explorer_p50_ms']} ms, p95 {pg['explorer_p95_ms']} ms (target < 1000)",
        f"sql       hand-written on the same rollup: p50 {pg['sql_p50_ms']} ms, "
        f"p95 {pg['sql_p95_ms']} ms",
        f"ratio     {pg['ratio']} (same cells: {pg['same_cells']})",
    ]
