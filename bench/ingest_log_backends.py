"""Ingest log backends side by side: the embedded local log and NATS JetStream.

Run: ``.venv/bin/python bench/ingest_log_backends.py [--records 50000] [--size 200]
[--nats nats://127.0.0.1:4222] [--window 20000]``

For each backend, in the same run on the same machine:

1. append: a gateway-like producer appends ``size``-byte records in bursts of 100 with at
   most ``window`` unacknowledged (the gateway's back-pressure), and counts acks from
   done-callbacks: records/s to the last ack and the ack latency (p50/p99) of every
   100th record. Appends are pipelined in both backends: many in flight, no round trip each.
2. read: a consumer reads everything back from offset -1 in batches of 10,000: records/s.

The NATS stream is file-backed with the server's defaults (asynchronous fsync; see
docs/operations-scale-out.md) and gets a unique name, deleted at the end. The load average
is printed beside: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from aislehub.ingest.local_log import LocalLog
from aislehub.ingest.log import IngestLog
from aislehub.ingest.nats_log import NatsLog


class Log(IngestLog, Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...


async def append_phase(log: IngestLog, records: int, size: int, window: int) -> str:
    payload = os.urandom(size)
    acked = 0
    latencies: list[float] = []
    room = asyncio.Event()
    done = asyncio.Event()

    def on_ack(sent: float | None) -> Callable[[asyncio.Future[int]], None]:
        def callback(future: asyncio.Future[int]) -> None:
            nonlocal acked
            future.result()
            acked += 1
            if sent is not None:
                latencies.append(time.perf_counter() - sent)
            if appended - acked < window:
                room.set()
            if acked == records:
                done.set()

        return callback

    started = time.perf_counter()
    appended = 0
    while appended < records:
        if appended - acked >= window:
            room.clear()
            await room.wait()
        for _ in range(min(100, window, records - appended)):
            sent = time.perf_counter() if appended % 100 == 0 else None
            log.append(payload).add_done_callback(on_ack(sent))
            appended += 1
        await asyncio.sleep(0)
    await done.wait()
    elapsed = time.perf_counter() - started
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    return f"append {records / elapsed:>9,.0f} rec/s   ack p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"


async def read_phase(log: IngestLog, records: int) -> str:
    started = time.perf_counter()
    after, count = -1, 0
    while count < records:
        batch = await log.read(after, 10_000, timeout=1)
        count += len(batch)
        after = batch[-1][0]
    return f"read   {count / (time.perf_counter() - started):>9,.0f} rec/s"


async def measure(name: str, log: Log, args: argparse.Namespace) -> None:
    await log.start()
    try:
        appended = await append_phase(log, args.records, args.size, args.window)
        read = await read_phase(log, args.records)
        print(f"{name:<6} {appended}   {read}")
    finally:
        if isinstance(log, NatsLog):
            await log.delete_stream()
        await log.close()


async def main(args: argparse.Namespace) -> None:
    print(
        f"{args.records:,} records of {args.size} B, window {args.window:,}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="ingest-log-bench-") as tmp:
        await measure("local", LocalLog(Path(tmp)), args)
    stream = f"BENCH_{secrets.token_hex(4).upper()}"
    await measure("nats", NatsLog(args.nats, stream, f"bench.{stream}"), args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--window", type=int, default=20_000)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    asyncio.run(main(parser.parse_args()))
