"""Kill-test child: a store writer on a JetStream ingest log, until it is killed.

Run as ``python nats_writer_child.py URL STREAM DUCKDB_FILE BATCH_MAX``. Prints ``ready``
once the writer runs; the parent kills it with SIGKILL while records are still arriving.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aislehub.ingest.consumer import StoreWriter
from aislehub.ingest.nats_log import NatsLog
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore


async def main(url: str, stream: str, database: Path, batch_max: int) -> None:
    log = NatsLog(url, stream, f"test.{stream}")
    await log.start()
    writer = StoreWriter(log, DuckDBTelemetryStore(database), batch_max=batch_max)
    await writer.start()
    print("ready", flush=True)
    await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])))
