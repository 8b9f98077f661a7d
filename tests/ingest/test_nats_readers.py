"""NatsLog named readers: durable JetStream consumers, restarts and retention.

What every ingest log does with named readers is in the conformance suite
(tests/conformance/test_ingest_log.py); here what only JetStream has: the durable
consumers as ``nats consumer info`` shows them, other log objects (processes) sharing the
stream, records batched into messages, and a store writer killed with SIGKILL mid-stream
that resumes on a new log.

``fill`` appends one record per message (each append awaited), so stream sequences and
records correspond one to one where a test counts messages.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nats
import orjson
from nats.js import api

from aislehub.ingest import batches
from aislehub.ingest.consumer import StoreWriter
from aislehub.ingest.nats_log import NatsLog, durable_name
from aislehub.ingest.record import TelemetryRecord, encode_record
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore
from tests.services import require_nats, unique_name

CHILD = Path(__file__).with_name("nats_writer_child.py")
T0 = 1_767_268_800_000


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


@asynccontextmanager
async def stream() -> AsyncIterator[tuple[str, str, Callable[..., NatsLog]]]:
    """A fresh stream: (url, name, new log on it); the stream is deleted afterwards."""
    url, name = require_nats(), unique_name("readers").upper()

    def new(**kw: Any) -> NatsLog:
        return NatsLog(url, name, f"test.{name}", **kw)

    try:
        yield url, name, new
    finally:
        log = new()
        await log.start()
        await log.delete_stream()
        await log.close()


async def consumer_info(url: str, name: str, durable: str) -> api.ConsumerInfo:
    """What ``nats consumer info <stream> <durable>`` shows, over the JetStream API."""
    nc = await nats.connect(url)
    try:
        return await nc.jetstream().consumer_info(name, durable)
    finally:
        await nc.close()


async def first_seq(url: str, name: str) -> int:
    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(name)).state.first_seq
    finally:
        await nc.close()


async def fill(log: NatsLog, count: int, size: int = 1) -> list[int]:
    """``count`` records, one message each: their offsets."""
    return [await log.append(b"r%06d" % i * size) for i in range(count)]


def test_a_named_reader_is_a_durable_consumer_showing_its_ack_floor() -> None:
    async def body() -> None:
        async with stream() as (url, name, new):
            log = new()
            await log.start()
            at = await fill(log, 100)
            batch = await log.read(-1, 40, timeout=0, consumer="store")
            info = await consumer_info(url, name, "store")
            assert info.config.durable_name == "store"
            assert info.config.ack_policy == api.AckPolicy.ALL
            assert info.num_ack_pending == 40  # read, not yet committed
            assert info.ack_floor is not None and not info.ack_floor.consumer_seq
            await log.acknowledge("store", batch[-1][0])
            info = await consumer_info(url, name, "store")
            assert info.ack_floor is not None and info.ack_floor.stream_seq == 40  # offset 39
            assert info.num_ack_pending == 0
            assert info.num_pending == 60  # left in the stream for this reader
            assert await log.acknowledged("store") == at[39]
            await log.close()
            # The consumer outlives the log object (a process); an anonymous reader's does not.
            assert (await consumer_info(url, name, "store")).ack_floor.stream_seq == 40  # type: ignore[union-attr]
            assert await log_readers(new) == {"store": at[39]}

    run(body)


async def log_readers(new: Callable[..., NatsLog]) -> dict[str, int]:
    log = new()
    await log.start()
    try:
        return await log.readers()
    finally:
        await log.close()


def test_a_restarted_reader_resumes_through_its_consumer_and_its_own_offset_decides() -> None:
    async def body() -> None:
        async with stream() as (url, name, new):
            first = new()
            await first.start()
            at = await fill(first, 100)
            await first.read(-1, 50, timeout=0, consumer="store")
            await first.acknowledge("store", at[49])
            await first.close()
            created = (await consumer_info(url, name, "store")).created

            # Agreeing (acknowledged 49, resumes after 49): the same consumer goes on.
            second = new()
            await second.start()
            got = await second.read(at[49], 10, timeout=0, consumer="store")
            assert [o for o, _ in got] == at[50:60]
            assert (await consumer_info(url, name, "store")).created == created
            await second.close()  # killed before the commit: 50..59 delivered, not acked

            # The store had committed 55 but the ack was lost: resume after 55, not 49 or 59.
            third = new()
            await third.start()
            assert await third.acknowledged("store") == at[49]
            got = await third.read(at[55], 10, timeout=0, consumer="store")
            assert [o for o, _ in got] == at[56:66]
            assert await third.acknowledged("store") == at[55]
            info = await consumer_info(url, name, "store")
            assert info.created != created and info.num_ack_pending == 10
            # Acknowledged ahead of the store (restored from an older backup): read again.
            await third.acknowledge("store", at[65])
            got = await third.read(at[20], 5, timeout=0, consumer="store")
            assert [o for o, _ in got] == at[21:26]
            assert await third.acknowledged("store") == at[20]
            await third.close()

    run(body)


def test_reader_names_become_escaped_durable_names() -> None:
    async def body() -> None:
        async with stream() as (url, name, new):
            log = new()
            await log.start()
            at = await fill(log, 3)
            assert durable_name("rules@cell-2") == "rules~40cell-2"
            await log.read(at[0], 5, timeout=0, consumer="rules@cell-2")
            await log.acknowledge("rules@cell-2", at[2])
            info = await consumer_info(url, name, "rules~40cell-2")
            assert info.ack_floor is not None and info.ack_floor.stream_seq == 3
            assert await log.acknowledged("rules@cell-2") == at[2]
            await log.close()

    run(body)


def test_retention_waits_for_readers_in_other_processes() -> None:
    async def body() -> None:
        async with stream() as (url, name, new):
            writer_side, rules_side = new(), new()
            await writer_side.start()
            await rules_side.start()
            at = await fill(writer_side, 1000, size=20)
            await writer_side.read(-1, 1000, timeout=0, consumer="store")
            await writer_side.acknowledge("store", at[999])
            await rules_side.read(-1, 300, timeout=0, consumer="rules")
            await rules_side.acknowledge("rules", at[299])
            await writer_side.truncate_before(at[999] + 1)  # the writer alone: drop it all
            assert await first_seq(url, name) == 301  # the rules' next record
            got = await rules_side.read(at[299], 1000, timeout=0, consumer="rules")
            assert [o for o, _ in got] == at[300:]
            await rules_side.acknowledge("rules", at[999])
            await writer_side.truncate_before(at[999] + 1)
            assert await first_seq(url, name) == 1001
            await writer_side.close()
            await rules_side.close()

    run(body)


def test_a_declared_reader_holds_the_stream_before_its_first_read() -> None:
    """A reader that has never read (say, in a process not started yet) loses nothing."""

    async def body() -> None:
        async with stream() as (url, name, new):
            log = new(readers=["meter"])
            await log.start()
            assert await log.acknowledged("meter") == -1
            at = await fill(log, 200)
            await log.read(-1, 200, timeout=0, consumer="store")
            await log.acknowledge("store", at[199])
            await log.truncate_before(at[199] + 1)
            assert await first_seq(url, name) == 1
            await log.close()
            later = new(readers=["meter"])  # an existing consumer is left as it is
            await later.start()
            got = await later.read(-1, 500, timeout=0, consumer="meter")
            assert [o for o, _ in got] == at
            await later.acknowledge("meter", at[149])
            await later.truncate_before(at[199] + 1)
            assert await first_seq(url, name) == 151
            await later.close()

    run(body)


# -- a store writer killed mid-stream -------------------------------------------------------

COUNT = 12_000
RESEND_EVERY = 10  # every 10th message is sent twice (a device that missed its PUBACK)


def telemetry(i: int) -> bytes:
    """Message ``i`` of the fleet; ids repeat for re-sends, which come 50 records later."""
    device = f"d{i % 7}"
    body = orjson.dumps({"seq": i, "temp": 20 + i % 13})
    return encode_record(TelemetryRecord("app", device, None, T0 + i, {"$.mid": f"m{i}"}, body))


def traffic() -> list[bytes]:
    out = []
    for i in range(COUNT):
        out.append(telemetry(i))
        if i % RESEND_EVERY == 0 and i >= 50:
            out.append(telemetry(i - 50))
    return out


def test_a_killed_store_writer_resumes_on_a_new_log_storing_each_message_once(
    tmp_path: Path,
) -> None:
    database = tmp_path / "telemetry.duckdb"

    async def body() -> None:
        async with stream() as (url, name, new):
            log = new()
            await log.start()
            records = traffic()
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
            command = [sys.executable, str(CHILD), url, name, str(database), "200"]
            proc = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, env=env
            )
            try:
                assert proc.stdout is not None
                assert await proc.stdout.readline() == b"ready\n"
                sent, acked_at_kill, killed_after = 0, -1, -1
                offsets: list[int] = []

                async def acknowledged() -> int:
                    info = await consumer_info(url, name, "store")
                    return batches.last_offset(info.ack_floor.stream_seq if info.ack_floor else 0)

                while sent < len(records):  # a live stream; the writer dies in the middle
                    # 300 records a turn make one message, which the writer (200 records a
                    # batch) reads in parts and acknowledges only once all of it is stored.
                    offsets += await asyncio.gather(
                        *(log.append(r) for r in records[sent : sent + 300])
                    )
                    sent += 300
                    if acked_at_kill >= 0 or len(offsets) < 2000:
                        continue
                    # Kill once it has stored some; by half the stream at the latest (a slow
                    # machine: wait for it there).
                    deadline = time.monotonic() + (60 if sent >= len(records) // 2 else 0)
                    while (acked := await acknowledged()) < offsets[1999]:
                        if time.monotonic() >= deadline:
                            break
                        await asyncio.sleep(0.05)
                    if acked >= offsets[1999]:
                        proc.kill()  # SIGKILL
                        await proc.wait()
                        acked_at_kill, killed_after = acked, sent
                    await asyncio.sleep(0.01)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            assert acked_at_kill >= 0, "the writer was never seen acknowledging"
            assert killed_after < len(records), "killed only after the stream ended"
            last = offsets[-1]
            assert log.durable_offset == last

            store = DuckDBTelemetryStore(database)
            writer = StoreWriter(new(), store, batch_max=1000)
            restarted = writer._log
            assert isinstance(restarted, NatsLog)
            await restarted.start()
            await writer.start()
            resumed_from = writer.stored_offset
            assert resumed_from >= acked_at_kill  # the store is at or ahead of the ack
            started = time.monotonic()
            assert await writer.wait_stored(last, timeout=60), writer.stored_offset
            await writer.close()
            elapsed = time.monotonic() - started

            _, rows = store.query(
                "SELECT count(*), count(DISTINCT message_id), max(log_offset) FROM messages", []
            )
            assert rows == [(COUNT, COUNT, last)]  # every message once, re-sends dropped
            _, dup = store.query(
                "SELECT message_id FROM messages GROUP BY ALL HAVING count(*) > 1", []
            )
            assert dup == []
            assert store.committed_offset("store") == last
            info = await consumer_info(url, name, "store")
            assert info.ack_floor is not None and info.ack_floor.stream_seq == last >> 16
            assert info.num_ack_pending == 0 and info.num_pending == 0
            # Only what the store had not committed was read again.
            assert writer.stats.records == sum(1 for o in offsets if o > resumed_from)
            assert elapsed < 60
            store.close()
            await restarted.close()
            await log.close()

    run(body)
