"""StoreWriter end to end: local log in, DuckDB out; restarts, re-sends, invalid payloads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from aislehub.ingest import consumer as consumer_module
from aislehub.ingest.consumer import StoreWriter
from aislehub.ingest.local_log import LocalLog
from aislehub.ingest.log import IngestLogError
from aislehub.ingest.record import TelemetryRecord, encode_record
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore

T0 = 1_767_268_800_000


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


def telemetry(i: int, mid: str | None = None, payload: bytes | None = None) -> bytes:
    props = {} if mid is None else {"$.mid": mid}
    body = payload if payload is not None else orjson.dumps({"seq": i, "ok": i % 2 == 0})
    return encode_record(TelemetryRecord("app", f"d{i % 3}", None, T0 + i, props, body))


class Pipeline:
    """A log, a store and a writer on ``directory``; reopenable to simulate restarts."""

    def __init__(self, directory: Path, **writer_kw: Any) -> None:
        self.directory = directory
        self.writer_kw = writer_kw

    async def __aenter__(self) -> Pipeline:
        self.log = LocalLog(self.directory / "log")
        await self.log.start()
        self.store = DuckDBTelemetryStore(self.directory / "t.duckdb")
        self.writer = StoreWriter(self.log, self.store, **self.writer_kw)
        try:
            await self.writer.start()
        except BaseException:
            await self.log.close()
            self.store.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.log.close()
        await self.writer.close()
        self.store.close()

    async def publish(self, records: list[bytes]) -> int:
        offsets = await asyncio.gather(*(self.log.append(r) for r in records))
        return offsets[-1]


def test_end_to_end_and_wait_stored(tmp_path: Path) -> None:
    async def body() -> None:
        async with Pipeline(tmp_path) as p:
            last = await p.publish([telemetry(i, mid=f"m{i}") for i in range(300)])
            assert await p.writer.wait_stored(last, timeout=10)
            assert p.writer.lag == 0
            assert p.store.count_messages("app") == 300
            at = datetime.fromtimestamp((T0 + 299) / 1000, UTC)
            assert p.store.latest("app", "d2", "seq") == (299.0, at)
            assert p.store.latest("app", "d2", "ok") == (False, at)
            assert p.writer.stats.records == 300
            assert not await p.writer.wait_stored(last + 1, timeout=0.05)

    run(body)


def test_restart_replays_from_committed_offset_without_duplicates(tmp_path: Path) -> None:
    async def body() -> None:
        async with Pipeline(tmp_path) as p:
            last = await p.publish([telemetry(i) for i in range(100)])
            assert await p.writer.wait_stored(last, timeout=10)
        # Records appended while no writer runs (the writer crashed, say).
        log = LocalLog(tmp_path / "log")
        await log.start()
        await asyncio.gather(*(log.append(telemetry(i)) for i in range(100, 250)))
        await log.close()
        async with Pipeline(tmp_path) as p:
            assert p.writer.stored_offset == 99
            assert await p.writer.wait_stored(249, timeout=10)
            assert p.store.count_messages("app") == 250
            assert p.writer.stats.records == 150  # only the new ones were read

    run(body)


def test_close_drains_what_is_durable(tmp_path: Path) -> None:
    async def body() -> None:
        async with Pipeline(tmp_path) as p:
            await p.publish([telemetry(i) for i in range(500)])
        async with Pipeline(tmp_path) as p:
            assert p.writer.stored_offset == 499

    run(body)


def test_invalid_json_is_kept_and_counted(tmp_path: Path) -> None:
    async def body() -> None:
        async with Pipeline(tmp_path) as p:
            records = [
                telemetry(0),
                telemetry(1, payload=b"\x00garbage"),
                telemetry(2, payload=b"[]"),
            ]
            last = await p.publish(records)
            assert await p.writer.wait_stored(last, timeout=10)
            assert p.store.count_messages("app") == 3
            assert p.writer.stats.decode.invalid_json == 1
            assert p.writer.stats.decode.not_object == 1

    run(body)


def test_device_resends_are_stored_once(tmp_path: Path) -> None:
    async def body() -> None:
        async with Pipeline(tmp_path) as p:
            first = [telemetry(i, mid=f"m{i}") for i in range(10)]
            last = await p.publish(first + first[3:5])  # PUBACK lost: DUP re-send appended
            assert await p.writer.wait_stored(last, timeout=10)
            assert p.store.message_ids("app") == [f"m{i}" for i in range(10)]
            assert p.writer.stats.duplicates == 2
        async with Pipeline(tmp_path) as p:  # the window is seeded from the store
            last = await p.publish([telemetry(7, mid="m7"), telemetry(10, mid="m10")])
            assert await p.writer.wait_stored(last, timeout=10)
            assert p.store.message_ids("app") == [f"m{i}" for i in range(11)]

    run(body)


def test_same_id_from_another_device_is_not_a_resend(tmp_path: Path) -> None:
    async def body() -> None:
        async with Pipeline(tmp_path) as p:
            last = await p.publish([telemetry(0, mid="x"), telemetry(1, mid="x")])  # d0, d1
            assert await p.writer.wait_stored(last, timeout=10)
            assert p.store.count_messages("app") == 2

    run(body)


def test_failed_store_write_is_retried(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(consumer_module, "_RETRY_PAUSE", 0.01)

    async def body() -> None:
        async with Pipeline(tmp_path) as p:
            real, failures = p.store.write_batch, [1]

            def flaky(*args: Any) -> bool:
                if failures:
                    failures.pop()
                    raise OSError("disk full")
                return real(*args)

            monkeypatch.setattr(p.store, "write_batch", flaky)
            last = await p.publish([telemetry(i, mid=f"m{i}") for i in range(20)])
            assert await p.writer.wait_stored(last, timeout=10)
            assert p.writer.stats.write_errors == 1
            assert p.store.message_ids("app") == [f"m{i}" for i in range(20)]

    run(body)


def test_failed_prepare_is_retried_without_losing_ids(tmp_path: Path, monkeypatch: Any) -> None:
    """A batch that could not be prepared passes the re-send window again on the retry."""
    monkeypatch.setattr(consumer_module, "_RETRY_PAUSE", 0.01)
    monkeypatch.setattr(consumer_module, "_SLICE", 7)  # several slices per batch
    real, failures = consumer_module.to_batch, [1]

    def flaky(rows: Any) -> Any:
        if failures and len(rows) > 3:  # after the first slice's keys were taken
            failures.pop()
            raise RuntimeError("bug")
        return real(rows)

    monkeypatch.setattr(consumer_module, "to_batch", flaky)

    async def body() -> None:
        async with Pipeline(tmp_path) as p:
            last = await p.publish([telemetry(i, mid=f"m{i}") for i in range(20)])
            assert await p.writer.wait_stored(last, timeout=10)
            assert p.writer.stats.write_errors == 1
            assert p.store.message_ids("app") == [f"m{i}" for i in range(20)]

    run(body)


def test_batches_commit_in_log_order_while_the_next_is_prepared(tmp_path: Path) -> None:
    async def body() -> None:
        async with Pipeline(tmp_path, batch_max=25) as p:
            records = [telemetry(i, mid=f"m{i % 60}") for i in range(200)]  # re-sends too
            last = await p.publish(records)
            assert await p.writer.wait_stored(last, timeout=10)
            assert p.store.message_ids("app") == [f"m{i}" for i in range(60)]
            assert p.writer.stats.duplicates == 140
            assert p.writer.stats.batches >= 8

    run(body)


def test_writer_truncates_the_log_behind_it(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(consumer_module, "_TRUNCATE_EVERY", 0.0)

    async def body() -> None:
        log = LocalLog(tmp_path / "log", segment_bytes=2048)
        await log.start()
        store = DuckDBTelemetryStore(tmp_path / "t.duckdb")
        writer = StoreWriter(log, store, poll_interval=0.01)
        await writer.start()
        for start in range(0, 1000, 50):
            await asyncio.gather(*(log.append(telemetry(i)) for i in range(start, start + 50)))
        assert await writer.wait_stored(999, timeout=10)
        await asyncio.sleep(0.05)  # one more loop turn: truncation follows the write
        segments_left = list((tmp_path / "log").glob("*.seg"))
        await writer.close()
        await log.close()
        store.close()
        assert len(segments_left) <= 2

    run(body)


def test_undecodable_record_is_skipped_not_a_poison_pill(tmp_path: Path) -> None:
    async def body() -> None:
        async with Pipeline(tmp_path) as p:
            last = await p.publish([telemetry(0), b"\x07not a record", telemetry(2)])
            assert await p.writer.wait_stored(last, timeout=10)
            assert p.store.count_messages("app") == 2
            assert p.writer.stats.decode.corrupt == 1
            assert p.writer.stats.duplicates == 0

    run(body)


def test_close_gives_up_when_the_store_keeps_failing(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(consumer_module, "_RETRY_PAUSE", 0.01)

    def broken(*args: Any) -> bool:
        raise OSError("disk full")

    async def body() -> None:
        async with Pipeline(tmp_path) as p:
            monkeypatch.setattr(p.store, "write_batch", broken)
            await p.publish([telemetry(0)])
            await asyncio.wait_for(p.writer.close(), timeout=5)
            assert p.writer.stored_offset == -1
            assert p.writer.stats.write_errors >= 1

    run(body)


def test_refuses_to_start_on_a_log_older_than_the_store(tmp_path: Path) -> None:
    async def body() -> None:
        async with Pipeline(tmp_path) as p:
            last = await p.publish([telemetry(i) for i in range(10)])
            assert await p.writer.wait_stored(last, timeout=10)
        for segment in (tmp_path / "log").glob("*.seg"):
            segment.unlink()  # an operator wiped the log, the database stayed
        with pytest.raises(IngestLogError, match="restore the log"):
            async with Pipeline(tmp_path):
                pass

    run(body)


def test_writer_acknowledges_to_the_log_only_what_the_store_committed(
    tmp_path: Path, monkeypatch: Any
) -> None:
    async def body() -> None:
        async with Pipeline(tmp_path, consumer_name="store-writer", batch_max=50) as p:
            last = await p.publish([telemetry(i, mid=f"m{i}") for i in range(300)])
            assert await p.writer.wait_stored(last, timeout=10)
            assert await p.log.acknowledged("store-writer") == last == p.writer.stored_offset
            failing = True
            original = p.store.write_batch

            def flaky(*args: Any) -> Any:
                if failing:
                    raise OSError("disk full")
                return original(*args)

            monkeypatch.setattr(p.store, "write_batch", flaky)
            monkeypatch.setattr(consumer_module, "_RETRY_PAUSE", 0.05)
            more = await p.publish([telemetry(i, mid=f"m{i}") for i in range(300, 400)])
            await asyncio.sleep(0.3)  # read, but the store refuses it: not acknowledged
            assert p.writer.stats.write_errors > 0
            assert await p.log.acknowledged("store-writer") == last
            failing = False
            assert await p.writer.wait_stored(more, timeout=10)
            assert await p.log.acknowledged("store-writer") == more

    run(body)
