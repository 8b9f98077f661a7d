"""Ingest pipeline micro-benchmark: local log group commit, store writer, end to end.

Run: ``.venv/bin/python bench/ingest_pipeline.py [--records 200000] [--loop asyncio]``

1. append: a gateway-like producer appends 100-byte records in bursts of 100 (one
   ``data_received`` worth), stops at 20,000 unacknowledged (the gateway's back-pressure)
   and counts acks from done-callbacks: records/s to the last ack, fsyncs, ack latency.
2. store (untyped, then typed): the log is pre-filled with encoded telemetry (~100-byte
   JSON payloads, four fields); a fresh StoreWriter replays it into a fresh DuckDB file:
   records/s, the writer's time on the event loop (unpacking records into batch tables, in Python)
   and in the store's thread (DuckDB, GIL released), and the Python part on its own; then
   the same with every device on a template declaring the four fields (typed ingest),
   and the ratio of the two rates.
3. end to end: appends paced at a fixed rate while the writer runs: ack latency and
   publish-to-queryable latency of every 500th record.

The machine is shared with whatever else runs: the load average is printed beside.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import orjson
import pyarrow as pa

from aislehub.ingest.columns import decode_encoded
from aislehub.ingest.consumer import DEFAULT_BATCH_MAX, StoreWriter
from aislehub.ingest.local_log import LocalLog
from aislehub.ingest.record import TelemetryRecord, encode_record
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore
from aislehub.store.telemetry import DEVICE_CATALOG_SCHEMA, TEMPLATE_FIELDS_SCHEMA, Catalog

BURST = 100  # records per simulated data_received
MAX_UNACKED = 20_000  # the producer pauses here, as the gateway pauses reading
BATCH_MAX = DEFAULT_BATCH_MAX  # --batch-max overrides


def telemetry(i: int) -> bytes:
    body = {
        "temperature": round(random.uniform(2, 8), 2),
        "humidity": round(random.uniform(30, 60), 1),
        "doorOpen": i % 17 == 0,
        "compressorPower": random.randint(80, 140),
    }
    props = {"$.mid": f"{i:012x}", "$.ct": "application/json", "$.ce": "utf-8"}
    now = int(time.time() * 1000)
    return encode_record(
        TelemetryRecord("bench", f"cooler-{i % 1000}", None, now, props, orjson.dumps(body))
    )


def ms(values: list[float], q: int) -> str:
    value = statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]
    return f"{value * 1e3:.1f} ms"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(label: str, text: str) -> None:
    print(f"{label:<8} {text}", flush=True)


async def bench_append(directory: Path, n: int) -> None:
    log = LocalLog(directory)
    await log.start()
    acked, appended = 0, 0
    latencies: list[float] = []
    room, done = asyncio.Event(), asyncio.Event()

    def on_ack(_: object) -> None:
        nonlocal acked
        acked += 1
        if acked == n:
            done.set()
        if appended - acked <= MAX_UNACKED // 2:
            room.set()

    def sample(appended_at: float, _: object) -> None:
        latencies.append(time.perf_counter() - appended_at)

    started = time.perf_counter()
    while appended < n:
        now = time.perf_counter()
        for j in range(BURST):
            future = log.append(bytes(100))
            future.add_done_callback(on_ack)
            if j == 0:
                future.add_done_callback(partial(sample, now))
        appended += BURST
        if appended - acked > MAX_UNACKED:
            room.clear()
            await room.wait()
        await asyncio.sleep(0)
    await done.wait()
    elapsed = time.perf_counter() - started
    s = log.stats
    report("append", f"{n / elapsed:,.0f} records/s ({n:,} x 100 B in {elapsed:.2f} s)")
    fsync_mean = s.fsync_seconds / s.committed_batches
    report(
        "",
        f"{s.committed_batches:,} fsyncs, {n / s.committed_batches:,.0f} records each, "
        f"fsync mean {fsync_mean * 1e3:.2f} ms, max {s.fsync_max_seconds * 1e3:.2f} ms",
    )
    report("", f"ack latency at saturation p50 {ms(latencies, 50)}, p99 {ms(latencies, 99)}")
    await log.close()


def cooler_catalog() -> Catalog:
    """The bench devices on a template declaring the four fields ``telemetry`` sends."""
    template = "dtmi:bench:Cooler;1"
    kinds = {"temperature": "double", "humidity": "double", "doorOpen": "boolean"}
    kinds["compressorPower"] = "integer"
    devices = [
        {
            "app_id": "bench",
            "device_id": f"cooler-{i}",
            "template_id": template,
            "provisioned": True,
            "simulated": True,
            "enabled": True,
        }
        for i in range(1000)
    ]
    fields = [
        {"app_id": "bench", "template_id": template, "component": "", "name": k, "kind": v}
        for k, v in kinds.items()
    ]
    return Catalog(
        pa.Table.from_pylist(devices, schema=DEVICE_CATALOG_SCHEMA),
        pa.Table.from_pylist(fields, schema=TEMPLATE_FIELDS_SCHEMA),
    )


async def bench_store(directory: Path, n: int, typed: bool) -> float:
    """Replay ``n`` records into a fresh store; records/s (typed: the devices have a template)."""
    records = [telemetry(i) for i in range(n)]
    log = LocalLog(directory / "log")
    await log.start()
    for i in range(0, n, 10_000):
        await asyncio.gather(*(log.append(r) for r in records[i : i + 10_000]))
    await log.close()
    log = LocalLog(directory / "log")  # reopened: the writer replays from the files
    await log.start()
    store = DuckDBTelemetryStore(directory / "t.duckdb")
    if typed:
        store.sync_catalog(cooler_catalog())
    writer = StoreWriter(log, store, truncate_log=False, batch_max=BATCH_MAX)
    started = time.perf_counter()
    await writer.start()
    await writer.wait_stored(n - 1, timeout=600)
    elapsed = time.perf_counter() - started
    st = writer.stats
    rows = st.decode.number_rows + st.decode.value_rows + n
    label = "typed" if typed else "store"
    report(
        label,
        f"{n / elapsed:,.0f} records/s ({n:,} records = {rows:,} rows, "
        f"{st.batches} batches, {elapsed:.2f} s)",
    )
    if typed:
        assert st.decode.mistyped_fields == st.decode.unknown_fields == 0
    report(
        "",
        f"on the event loop {st.decode_seconds:.2f} s (records to batch tables), "
        f"in the store's thread {st.write_seconds:.2f} s (overlapping)",
    )
    await writer.close()
    await log.close()
    store.close()
    if typed:
        return n / elapsed
    entries = list(enumerate(records))
    cpu = time.process_time()
    for i in range(0, n, 5000):
        decode_encoded(entries[i : i + 5000])
    per = (time.process_time() - cpu) / n
    report("", f"Python alone {1 / per:,.0f} records/s ({per * 1e6:.1f} us CPU per record)")
    return n / elapsed


async def bench_end_to_end(directory: Path, rate: int, seconds: float) -> None:
    log = LocalLog(directory / "log")
    await log.start()
    store = DuckDBTelemetryStore(directory / "t.duckdb")
    writer = StoreWriter(log, store, batch_max=BATCH_MAX)
    await writer.start()
    # Distinct message ids: repeated records would be dropped as device re-sends.
    records = [telemetry(i) for i in range(int(rate * seconds * 1.1))]
    acks: list[float] = []
    stored: list[float] = []

    async def track(future: asyncio.Future[int], started: float) -> None:
        offset = await future
        acks.append(time.perf_counter() - started)
        await writer.wait_stored(offset, timeout=60)
        stored.append(time.perf_counter() - started)

    async with asyncio.TaskGroup() as tasks:
        start, sent = time.perf_counter(), 0
        while (now := time.perf_counter()) - start < seconds:
            for k in range(sent, int((now - start) * rate)):
                future = log.append(records[k])
                if k % 500 == 0:
                    tasks.create_task(track(future, now), name=f"track-{k}")
                sent = k + 1
            await asyncio.sleep(0.001)
    drained = time.perf_counter() - start - seconds
    report(
        "e2e",
        f"{rate:,} msg/s offered: {sent / seconds:,.0f} msg/s appended for {seconds:.0f} s; "
        f"all stored {drained:.1f} s after the last append; {writer.stats.batches} batches",
    )
    report(
        "",
        f"ack p50 {ms(acks, 50)}, p99 {ms(acks, 99)}; publish->queryable "
        f"p50 {ms(stored, 50)}, p99 {ms(stored, 99)}, max {max(stored) * 1e3:.0f} ms",
    )
    await log.close()
    await writer.close()
    store.close()


async def main(args: argparse.Namespace) -> None:
    report("load", f"{_load()} (1, 5, 15 min) on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        await bench_append(root / "append", args.records)
        untyped = await bench_store(root / "store", args.records, typed=False)
        typed = await bench_store(root / "typed", args.records, typed=True)
        report("", f"typed / untyped = {typed / untyped:.2f} (target >= 0.90)")
        for rate in args.rates:
            await bench_end_to_end(root / f"e2e-{rate}", rate, args.seconds)
    report("load", f"{_load()} after")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--rates", type=int, nargs="*", default=[10_000, 50_000])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--batch-max", type=int, default=BATCH_MAX)
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    p.add_argument("--dir", help="where the log and database go (default: the system temp)")
    return p.parse_args()


if __name__ == "__main__":
    arguments = parse()
    BATCH_MAX = arguments.batch_max
    if arguments.loop == "uvloop":
        import uvloop

        uvloop.run(main(arguments))
    else:
        asyncio.run(main(arguments))
