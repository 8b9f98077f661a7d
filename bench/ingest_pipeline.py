"""Ingest pipeline micro-benchmark: local log group commit, store writer, end to end.

Run: ``.venv/bin/python bench/ingest_pipeline.py [--records 200000] [--loop asyncio]``

1. append: a gateway-like producer appends 100-byte records in bursts of 100 (one
   ``data_received`` worth) and counts acks from done-callbacks; records/s until the last
   ack, fsyncs, and ack latency.
2. store: the log is pre-filled with encoded telemetry (~100-byte JSON payloads, four
   fields); a fresh StoreWriter drains it into a fresh DuckDB file; records/s, and the
   decode share measured separately.
3. end to end: appends paced at a fixed rate while the writer runs; publish-to-queryable
   latency of sampled records (p50/p99).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from aislehub.ingest.columns import decode_encoded
from aislehub.ingest.consumer import StoreWriter
from aislehub.ingest.local_log import LocalLog
from aislehub.ingest.record import TelemetryRecord, encode_record
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore

BURST = 100  # records per simulated data_received
MAX_UNACKED = 20_000  # the gateway pauses reading around this many (back-pressure)


def telemetry(i: int) -> bytes:
    payload = orjson.dumps(
        {"temperature": round(random.uniform(2, 8), 2), "humidity": round(random.uniform(30, 60), 1),
         "doorOpen": i % 17 == 0, "compressorPower": random.randint(80, 140)}
    )
    props = {"$.mid": f"{i:012x}", "$.ct": "application/json", "$.ce": "utf-8"}
    return encode_record(TelemetryRecord("bench", f"cooler-{i % 1000}", None, int(time.time() * 1000), props, payload))


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def bench_append(directory: Path, n: int) -> None:
    log = LocalLog(directory)
    await log.start()
    record = bytes(100)
    acked = 0
    latencies: list[float] = []
    done = asyncio.Event()

    def on_ack(_: object) -> None:
        nonlocal acked
        acked += 1
        if acked == n:
            done.set()

    def sampled(started: float) -> Callable[[object], None]:
        return lambda _: latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    for i in range(0, n, BURST):
        now = time.perf_counter()
        for j in range(BURST):
            future = log.append(record)
            future.add_done_callback(on_ack)
            if j == 0:
                future.add_done_callback(sampled(now))
        while i + BURST - acked > MAX_UNACKED:
            await asyncio.sleep(0.0005)
        await asyncio.sleep(0)
    await done.wait()
    elapsed = time.perf_counter() - started
    s = log.stats
    print(f"append   {n / elapsed:>10,.0f} records/s  ({n:,} x 100 B in {elapsed:.2f} s)")
    print(f"         {s.committed_batches:,} fsyncs, {n / s.committed_batches:,.0f} records/fsync, "
          f"fsync mean {s.fsync_seconds / s.committed_batches * 1e3:.2f} ms max {s.fsync_max_seconds * 1e3:.2f} ms")
    print(f"         ack latency p50 {pct(latencies, 50) * 1e3:.1f} ms  p99 {pct(latencies, 99) * 1e3:.1f} ms")
    await log.close()


async def bench_store(directory: Path, n: int) -> None:
    records = [telemetry(i) for i in range(n)]
    log = LocalLog(directory / "log")
    await log.start()
    for i in range(0, n, 10_000):
        await asyncio.gather(*(log.append(r) for r in records[i : i + 10_000]))
    await log.close()
    log = LocalLog(directory / "log")  # reopened: the writer replays from the files
    await log.start()
    store = DuckDBTelemetryStore(directory / "t.duckdb")
    writer = StoreWriter(log, store, truncate_log=False)
    started = time.perf_counter()
    await writer.start()
    await writer.wait_stored(n - 1, timeout=600)
    elapsed = time.perf_counter() - started
    st = writer.stats
    print(f"store    {n / elapsed:>10,.0f} records/s  ({n:,} records, {st.batches} batches, "
          f"{st.decode.number_rows + st.decode.value_rows:,} field rows, {elapsed:.2f} s)")
    await writer.close()
    await log.close()
    store.close()
    entries = list(enumerate(records))
    cpu = time.process_time()
    for i in range(0, n, 5000):
        decode_encoded(entries[i : i + 5000])
    decode_s = time.process_time() - cpu
    print(f"         decode alone {n / decode_s:,.0f} records/s ({decode_s / n * 1e6:.1f} us/record CPU)")


async def bench_end_to_end(directory: Path, rate: int, seconds: float) -> None:
    log = LocalLog(directory / "log")
    await log.start()
    store = DuckDBTelemetryStore(directory / "t.duckdb")
    writer = StoreWriter(log, store)
    await writer.start()
    records = [telemetry(i) for i in range(10_000)]
    latencies: list[float] = []
    waits: list[asyncio.Task[None]] = []

    async def track(future: asyncio.Future[int], started: float) -> None:
        offset = await future
        await writer.wait_stored(offset, timeout=60)
        latencies.append(time.perf_counter() - started)

    start = time.perf_counter()
    sent = 0
    while (now := time.perf_counter()) - start < seconds:
        due = int((now - start) * rate)
        for k in range(sent, due):
            future = log.append(records[k % len(records)])
            if k % 500 == 0:
                waits.append(asyncio.create_task(track(future, now), name=f"track-{k}"))
        sent = max(sent, due)
        await asyncio.sleep(0.001)
    await asyncio.gather(*waits)
    elapsed = time.perf_counter() - start
    print(f"e2e      {rate:>10,} msg/s offered for {seconds:.0f} s: {sent / elapsed:,.0f} msg/s stored; "
          f"publish->queryable p50 {pct(latencies, 50) * 1e3:.0f} ms, p99 {pct(latencies, 99) * 1e3:.0f} ms, "
          f"max {max(latencies) * 1e3:.0f} ms")
    await log.close()
    await writer.close()
    store.close()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        await bench_append(root / "append", args.records)
        await bench_store(root / "store", args.records)
        for rate in args.rates:
            await bench_end_to_end(root / f"e2e-{rate}", rate, args.seconds)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--rates", type=int, nargs="*", default=[10_000, 50_000])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    p.add_argument("--dir", help="where to put the log and database (default: system temp)")
    return p.parse_args()


if __name__ == "__main__":
    arguments = parse()
    if arguments.loop == "uvloop":
        import uvloop

        uvloop.run(main(arguments))
    else:
        asyncio.run(main(arguments))
