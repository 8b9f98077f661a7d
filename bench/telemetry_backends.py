"""Telemetry store backends side by side: the embedded DuckDB file and PostgreSQL.

Run: ``.venv/bin/python bench/telemetry_backends.py [--records 200000] [--batch 50000]
[--postgres postgresql://postgres@127.0.0.1:5432/postgres]``

In the same run on the same machine:

1. write: ``records`` cooler messages (~100-byte JSON payloads, four fields, as
   ``bench/ingest_pipeline.py`` sends; 1,000 devices at 1 Hz) are turned into batches of
   ``batch`` first, then timed through ``write_batch`` alone: into a fresh DuckDB file
   and a fresh PostgreSQL database, untyped and then typed (every device on a template
   declaring the four fields). Records/s of each and PostgreSQL / DuckDB.
2. parse: how PostgreSQL's store classifies payloads (orjson, in Python) against the
   alternative, a PL/pgSQL ``try_jsonb`` with an exception block, called per payload
   inside PostgreSQL on the same payloads.
3. query: a minute-grain aggregation over what was written (temperature avg/max per
   device and minute, the 10 devices with the highest max): DuckDB over the raw rows,
   PostgreSQL over the raw rows and over the ``telemetry_1m`` rollup. Median of
   ``--repeat`` runs, after one warm-up; the three results are checked to agree.

The PostgreSQL database gets a unique name and is dropped at the end. The load average
is printed beside: the machine is shared.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

from aislehub.ingest.columns import decode_batch
from aislehub.ingest.record import TelemetryRecord
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore
from aislehub.store.postgres_telemetry import PostgresTelemetryStore, _classify
from aislehub.store.telemetry import TelemetryBatch, TelemetryStore

sys.path.insert(0, str(Path(__file__).parent))
from ingest_pipeline import cooler_catalog

DEVICES = 1000


def report(label: str, text: str) -> None:
    print(f"{label:<8} {text}", flush=True)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def batches(n: int, size: int, start: datetime) -> list[tuple[TelemetryBatch, int]]:
    """``n`` cooler messages: device ``i % 1000`` sends once a second from ``start``."""
    random.seed(7)
    t0 = int(start.timestamp() * 1000)
    out = []
    for first in range(0, n, size):
        entries = []
        for i in range(first, min(first + size, n)):
            body = {
                "temperature": round(random.uniform(2, 8), 2),
                "humidity": round(random.uniform(30, 60), 1),
                "doorOpen": i % 17 == 0,
                "compressorPower": random.randint(80, 140),
            }
            props = {"$.mid": f"{i:012x}", "$.ct": "application/json", "$.ce": "utf-8"}
            ts = t0 + (i // DEVICES) * 1000
            record = TelemetryRecord(
                "bench", f"cooler-{i % DEVICES}", None, ts, props, orjson.dumps(body)
            )
            entries.append((i, record))
        out.append((decode_batch(entries), entries[-1][0]))
    return out


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    name = f"aislehub_bench_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
        )
    try:
        yield psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def write_all(
    store: TelemetryStore, work: list[tuple[TelemetryBatch, int]], typed: bool
) -> tuple[float, int]:
    """Records/s through write_batch, and the field rows stored."""
    if typed:
        store.sync_catalog(cooler_catalog())
    rows = 0
    started = time.perf_counter()
    for batch, last in work:
        counts = store.write_batch("store", batch, last)
        assert counts is not None
        assert counts.unknown_fields == counts.mistyped_fields == 0
        rows += counts.number_rows + counts.value_rows
    elapsed = time.perf_counter() - started
    return sum(len(b) for b, _ in work) / elapsed, rows


# Temperature per device and minute, for the 10 devices with the highest maximum.
_TOP10 = """
WITH s AS ({per_minute}),
top AS (SELECT device_id FROM s GROUP BY device_id ORDER BY max(mx) DESC, device_id LIMIT 10)
SELECT s.device_id, s.minute, s.av, s.mx FROM s JOIN top USING (device_id)
ORDER BY s.device_id, s.minute
"""
_RAW = (
    "SELECT device_id, date_trunc('minute', ts) AS minute, avg(value) AS av, max(value) AS mx "
    "FROM telemetry_num WHERE app_id = {p} AND name = {p} AND ts >= {p} AND ts < {p} "
    "AND component IS NULL AND module_id IS NULL GROUP BY 1, 2"
)
_ROLLUP = (
    "SELECT device_id, minute, sum(sum) / sum(count) AS av, max(max) AS mx "
    "FROM telemetry_1m WHERE app_id = {p} AND name = {p} AND minute >= {p} AND minute < {p} "
    "AND component IS NULL AND module_id IS NULL GROUP BY 1, 2"
)


def timed(run: Callable[[], list[tuple[Any, ...]]], repeat: int) -> tuple[float, list[Any]]:
    rows = run()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def same(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        minute_x = x[1].replace(tzinfo=UTC) if x[1].tzinfo is None else x[1]
        if x[0] != y[0] or minute_x != y[1].astimezone(UTC):
            return False
        if not (math.isclose(x[2], y[2], rel_tol=1e-9) and x[3] == y[3]):
            return False
    return True


def compare_parse(url: str, work: list[tuple[TelemetryBatch, int]]) -> None:
    payloads: list[bytes] = []
    for batch, _ in work:
        payloads.extend(batch.messages.column("payload").to_pylist())
    started = time.perf_counter()
    for i in range(0, len(payloads), 50_000):
        _classify(payloads[i : i + 50_000])
    python = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION pg_temp.try_jsonb(b bytea) RETURNS jsonb LANGUAGE plpgsql "
            "IMMUTABLE AS $$ BEGIN RETURN convert_from(b, 'UTF8')::jsonb; "
            "EXCEPTION WHEN others THEN RETURN NULL; END $$"
        )
        conn.execute("CREATE TEMP TABLE p (payload bytea)")
        with conn.cursor().copy("COPY p FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["bytea"])
            for payload in payloads:
                copy.write_row((payload,))
        timings = {}
        for label, expr in (
            ("try_jsonb", "pg_temp.try_jsonb(payload)"),
            ("jsonb cast", "convert_from(payload, 'UTF8')::jsonb"),
        ):
            started = time.perf_counter()
            conn.execute(f"SELECT count({expr}) FROM p").fetchall()
            timings[label] = time.perf_counter() - started
    n = len(payloads)
    report(
        "parse",
        f"orjson in Python {n / python:,.0f} payloads/s; in PostgreSQL: try_jsonb "
        f"(exception block) {n / timings['try_jsonb']:,.0f}/s, plain jsonb cast "
        f"(fails the batch on a bad payload) {n / timings['jsonb cast']:,.0f}/s",
    )


def main(args: argparse.Namespace) -> None:
    report("load", f"{_load()} (1, 5, 15 min) on {os.cpu_count()} CPUs")
    start = (datetime.now(UTC) - timedelta(seconds=args.records / DEVICES + 60)).replace(
        second=0, microsecond=0
    )
    work = batches(args.records, args.batch, start)
    n = args.records
    rates: dict[tuple[str, bool], float] = {}
    with tempfile.TemporaryDirectory() as tmp, postgres_database(args.postgres) as url:
        opened: dict[str, TelemetryStore] = {}
        for typed in (False, True):
            for backend in ("duckdb", "postgres"):
                if backend == "duckdb":
                    store: TelemetryStore = DuckDBTelemetryStore(Path(tmp) / f"t{typed}.duckdb")
                else:
                    if typed:  # a fresh database for each phase
                        opened.pop("postgres").close()
                        with psycopg.connect(url, autocommit=True) as conn:
                            conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
                    store = PostgresTelemetryStore(url)
                rate, rows = write_all(store, work, typed)
                rates[backend, typed] = rate
                label = "typed" if typed else "untyped"
                report(
                    backend,
                    f"{label:<7} {rate:>9,.0f} records/s ({n:,} records, {rows:,} field rows, "
                    f"batches of {args.batch:,})",
                )
                if backend in opened:
                    opened.pop(backend).close()
                opened[backend] = store
        for typed in (False, True):
            label = "typed" if typed else "untyped"
            ratio = rates["postgres", typed] / rates["duckdb", typed]
            report("ratio", f"{label:<7} PostgreSQL / DuckDB = {ratio:.2f}")
        compare_parse(url, work)

        duck, pg = opened["duckdb"], opened["postgres"]
        assert isinstance(duck, DuckDBTelemetryStore) and isinstance(pg, PostgresTelemetryStore)
        end = start + timedelta(seconds=n / DEVICES + 60)
        naive = [start.replace(tzinfo=None), end.replace(tzinfo=None)]
        duck_sql = _TOP10.format(per_minute=_RAW.format(p="?"))
        pg_raw = _TOP10.format(per_minute=_RAW.format(p="%s"))
        pg_rollup = _TOP10.format(per_minute=_ROLLUP.format(p="%s"))
        args_d = ["bench", "temperature", *naive]
        args_p = ["bench", "temperature", start, end]
        t_duck, r_duck = timed(lambda: duck.query(duck_sql, args_d)[1], args.repeat)
        t_raw, r_raw = timed(lambda: pg.query(pg_raw, args_p)[1], args.repeat)
        t_roll, r_roll = timed(lambda: pg.query(pg_rollup, args_p)[1], args.repeat)
        raw_rows = pg.query("SELECT count(*) FROM telemetry_num WHERE name = 'temperature'", [])[1][
            0
        ][0]
        rollup_rows = pg.query("SELECT count(*) FROM telemetry_1m WHERE name = 'temperature'", [])[
            1
        ][0][0]
        agree = same(r_duck, r_raw) and same(r_duck, r_roll)
        report(
            "query",
            f"temperature avg/max per device-minute, top 10 devices by max "
            f"({raw_rows:,} raw points, {rollup_rows:,} rollup rows); results agree: {agree}",
        )
        report("", f"DuckDB raw       {t_duck * 1e3:8.1f} ms")
        report("", f"PostgreSQL raw   {t_raw * 1e3:8.1f} ms ({t_raw / t_duck:.1f}x DuckDB)")
        report("", f"PostgreSQL 1m    {t_roll * 1e3:8.1f} ms ({t_roll / t_duck:.1f}x DuckDB)")
        for store in opened.values():
            store.close()
    report("load", f"{_load()} after")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=50_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument(
        "--postgres",
        default=os.environ.get(
            "AISLEHUB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
        ).replace("postgresql+psycopg://", "postgresql://"),
        help="a database from which the benchmark may CREATE DATABASE",
    )
    return p.parse_args()


if __name__ == "__main__":
    main(parse())
