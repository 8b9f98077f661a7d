"""Conformance suite for :class:`aislehub.ingest.log.IngestLog`: every backend passes it.

A backend registers a factory in ``BACKENDS``: given a fresh temporary directory it returns
a ``Backend`` whose ``new()`` builds an unstarted log *on the same storage* each time (the
reopen tests call it twice) and whose ``cleanup()`` removes that storage. ``local`` is the
embedded segmented log (small segments, so retention has something to drop); ``nats`` is a
JetStream stream of its own on the machine's NATS server (see ``tests/services.py``).

Backend-specific behaviour (fsync batching, torn tails, segment files, NATS disconnects)
is tested beside each implementation in ``tests/ingest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from aislehub.ingest.local_log import LocalLog
from aislehub.ingest.log import IngestLog, IngestLogClosed, OffsetTruncated
from aislehub.ingest.nats_log import NatsLog
from tests.services import require_nats, unique_name


class Log(IngestLog, Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...


@dataclass
class Backend:
    new: Callable[[], Log]
    cleanup: Callable[[], None]


def _local(directory: Path) -> Backend:
    return Backend(
        lambda: LocalLog(directory, segment_bytes=16 * 1024, tail_bytes=64 * 1024), lambda: None
    )


def _nats(_directory: Path) -> Backend:
    url = require_nats()
    stream = unique_name("conformance").upper()

    def new() -> NatsLog:
        return NatsLog(url, stream, f"test.{stream}", ack_timeout=5)

    async def delete() -> None:
        log = new()
        await log.start()
        await log.delete_stream()
        await log.close()

    return Backend(new, lambda: asyncio.run(delete()))


BACKENDS: dict[str, Callable[[Path], Backend]] = {"local": _local, "nats": _nats}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = BACKENDS[request.param](tmp_path)
    yield made
    made.cleanup()


def record(i: int) -> bytes:
    return b"record-%06d-" % i + bytes([i % 251]) * (i % 61)


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


async def opened(backend: Backend) -> Log:
    log = backend.new()
    await log.start()
    return log


async def read_all(log: IngestLog, after: int = -1, chunk: int = 1000) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    while batch := await log.read(after, chunk, timeout=0):
        out += batch
        after = batch[-1][0]
    return out


async def append_all(log: IngestLog, records: list[bytes]) -> list[int]:
    return list(await asyncio.gather(*(log.append(r) for r in records)))


def test_a_new_log_is_empty(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        assert log.durable_offset == -1
        assert await log.read(-1, 10, timeout=0) == []
        await log.close()

    run(body)


def test_appends_resolve_to_dense_offsets_in_order(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        resolved: list[int] = []
        futures = [log.append(record(i)) for i in range(3000)]
        for f in futures:
            f.add_done_callback(lambda f: resolved.append(f.result()))
        assert await asyncio.gather(*futures) == list(range(3000))
        assert resolved == list(range(3000))  # acknowledged in append order
        assert log.durable_offset == 2999
        assert await read_all(log, chunk=700) == [(i, record(i)) for i in range(3000)]
        await log.close()

    run(body)


def test_read_takes_records_after_an_offset_up_to_a_maximum(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        await append_all(log, [record(i) for i in range(100)])
        assert await log.read(-1, 3, timeout=0) == [(i, record(i)) for i in range(3)]
        assert await log.read(49, 2, timeout=0) == [(50, record(50)), (51, record(51))]
        assert await log.read(10, 1, timeout=0) == [(11, record(11))]  # going back works
        assert await log.read(97, 10, timeout=1) == [(98, record(98)), (99, record(99))]
        assert await log.read(99, 10, timeout=0) == []
        await log.close()

    run(body)


def test_read_waits_for_the_next_append(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        reader = asyncio.create_task(log.read(-1, 10, timeout=5))
        await asyncio.sleep(0.05)
        assert await log.append(b"late") == 0
        assert await reader == [(0, b"late")]
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await log.read(0, 10, timeout=0.2) == []  # times out empty
        assert 0.15 <= loop.time() - started < 2
        await log.close()

    run(body)


def test_reads_never_pass_the_durable_offset(backend: Backend) -> None:
    """A concurrent reader sees only acknowledged records, each at its acknowledged offset."""

    async def body() -> None:
        log = await opened(backend)
        seen: list[tuple[int, bytes]] = []

        async def reader() -> None:
            after = -1
            while after < 1999:
                batch = await log.read(after, 150, timeout=2)
                assert batch and batch[-1][0] <= log.durable_offset
                seen.extend(batch)
                after = batch[-1][0]

        task = asyncio.create_task(reader())
        offsets: dict[int, bytes] = {}
        for start in range(0, 2000, 100):
            chunk = [record(i) for i in range(start, start + 100)]
            for offset, rec in zip(await append_all(log, chunk), chunk, strict=True):
                offsets[offset] = rec
            await asyncio.sleep(0)
        await asyncio.wait_for(task, 20)
        assert seen == sorted(offsets.items())
        await log.close()

    run(body)


def test_concurrent_appenders_get_distinct_dense_offsets(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        rng = random.Random(7)

        async def appender(name: int) -> list[tuple[int, bytes]]:
            out = []
            for i in range(300):
                rec = b"%d:%d" % (name, i)
                out.append((await log.append(rec), rec))
                if rng.random() < 0.3:
                    await asyncio.sleep(0)
            return out

        results = await asyncio.gather(*(appender(n) for n in range(8)))
        acked = sorted(pair for result in results for pair in result)
        assert [offset for offset, _ in acked] == list(range(2400))
        for result in results:  # each appender's records keep its order
            assert [o for o, _ in result] == sorted(o for o, _ in result)
        assert await read_all(log) == acked
        await log.close()

    run(body)


def test_truncate_before_keeps_what_is_asked_for(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        for start in range(0, 3000, 500):
            await append_all(log, [record(i) * 3 for i in range(start, start + 500)])
        await log.truncate_before(2000)
        # Retention is best effort: what a backend still holds below 2000 it may return,
        # what it dropped is OffsetTruncated, never silently skipped.
        with contextlib.suppress(OffsetTruncated):
            assert await log.read(-1, 10, timeout=0) == [(i, record(i) * 3) for i in range(10)]
        assert await log.read(1999, 2, timeout=0) == [
            (2000, record(2000) * 3),
            (2001, record(2001) * 3),
        ]
        assert [o for o, _ in await read_all(log, 1999)] == list(range(2000, 3000))
        await log.truncate_before(10**9)  # past the end: the offsets stay dense
        assert await log.append(b"more") == 3000
        assert await log.read(2999, 5, timeout=0) == [(3000, b"more")]
        await log.close()

    run(body)


def test_close_settles_queued_appends_then_refuses_more(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        futures = [log.append(b"a"), log.append(b"b"), log.append(b"c")]
        await log.close()
        assert [f.result() for f in futures] == [0, 1, 2]
        with pytest.raises(IngestLogClosed):
            log.append(b"d")
        reopened = await opened(backend)
        assert [r for _, r in await read_all(reopened)] == [b"a", b"b", b"c"]
        await reopened.close()

    run(body)


def test_reopen_keeps_records_and_continues_offsets(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        await append_all(log, [record(i) for i in range(10)])
        await log.close()
        log = await opened(backend)
        assert log.durable_offset == 9
        assert await log.append(record(10)) == 10
        assert await read_all(log) == [(i, record(i)) for i in range(11)]
        await log.close()

    run(body)


def test_cancelled_append_does_not_break_the_others(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        futures = [log.append(record(i)) for i in range(3)]
        futures[1].cancel()
        assert await futures[2] == 2
        assert await read_all(log) == [(i, record(i)) for i in range(3)]
        await log.close()

    run(body)


def test_append_before_start_is_refused(backend: Backend) -> None:
    async def body() -> None:
        with pytest.raises(IngestLogClosed):
            backend.new().append(b"x")

    run(body)


# -- named readers ------------------------------------------------------------------------


async def read_named(
    log: IngestLog, name: str, after: int, upto: int, chunk: int = 100
) -> list[tuple[int, bytes]]:
    """Read as reader ``name`` from after ``after`` through ``upto``, acknowledging each
    batch as a consumer does after committing it."""
    out: list[tuple[int, bytes]] = []
    while after < upto:
        batch = await log.read(after, min(chunk, upto - after), timeout=1, consumer=name)
        assert batch, f"{name} got nothing after {after}"
        out += batch
        after = batch[-1][0]
        await log.acknowledge(name, after)
    return out


def test_named_readers_keep_their_own_positions(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        await append_all(log, [record(i) for i in range(200)])
        assert await log.acknowledged("store-writer") is None  # never read: unknown
        await log.acknowledge("store-writer", 50)  # nothing read: nothing to acknowledge
        assert await log.acknowledged("store-writer") is None
        assert await read_named(log, "store-writer", -1, 149, chunk=40) == [
            (i, record(i)) for i in range(150)
        ]
        assert await read_named(log, "rules", 99, 119) == [(i, record(i)) for i in range(100, 120)]
        assert await log.acknowledged("store-writer") == 149
        assert await log.acknowledged("rules") == 119
        # Each continues from its own position; the anonymous reader is not tracked.
        assert await log.read(119, 2, timeout=0, consumer="rules") == [
            (120, record(120)),
            (121, record(121)),
        ]
        assert await log.read(149, 2, timeout=0, consumer="store-writer") == [
            (150, record(150)),
            (151, record(151)),
        ]
        assert await log.read(10, 1, timeout=0) == [(11, record(11))]
        assert await log.acknowledged("store-writer") == 149  # read, not yet acknowledged
        await log.acknowledge("store-writer", 151)
        assert await log.acknowledged("store-writer") == 151
        await log.close()

    run(body)


def test_a_named_reader_acknowledges_only_what_it_read(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        await append_all(log, [record(i) for i in range(100)])
        assert len(await log.read(-1, 30, timeout=0, consumer="meter")) == 30
        await log.acknowledge("meter", 9)  # part of a batch
        assert await log.acknowledged("meter") == 9
        await log.acknowledge("meter", 90)  # past what it read: only what it read
        assert await log.acknowledged("meter") == 29
        await log.acknowledge("meter", 10)  # acknowledgements never go back
        assert await log.acknowledged("meter") == 29
        await log.close()

    run(body)


def test_a_named_reader_follows_the_offset_it_reads_after(backend: Backend) -> None:
    """The reader's own committed offset decides, whatever it acknowledged before."""

    async def body() -> None:
        log = await opened(backend)
        await append_all(log, [record(i) for i in range(100)])
        await read_named(log, "store-writer", -1, 59, chunk=20)
        assert await log.acknowledged("store-writer") == 59
        # Back (the acknowledged records were not committed after all): read again.
        assert await log.read(39, 5, timeout=0, consumer="store-writer") == [
            (i, record(i)) for i in range(40, 45)
        ]
        assert await log.acknowledged("store-writer") == 39
        # Forward (committed, but the acknowledgement was lost): nothing in between.
        assert await log.read(79, 5, timeout=0, consumer="store-writer") == [
            (i, record(i)) for i in range(80, 85)
        ]
        assert await log.acknowledged("store-writer") == 79
        await log.close()

    run(body)


def test_retention_keeps_what_a_named_reader_has_not_acknowledged(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        for start in range(0, 3000, 500):
            await append_all(log, [record(i) * 3 for i in range(start, start + 500)])
        await read_named(log, "store-writer", -1, 2999, chunk=1000)
        await read_named(log, "rules", -1, 499)
        await log.truncate_before(3000)  # the store writer is done; the rules are not
        assert await read_named(log, "rules", 499, 2999, chunk=1000) == [
            (i, record(i) * 3) for i in range(500, 3000)
        ]
        await log.truncate_before(2000)  # both have acknowledged everything now
        assert [o for o, _ in await read_all(log, 1999)] == list(range(2000, 3000))
        # An anonymous reader holds nothing back, and never silently skips.
        with contextlib.suppress(OffsetTruncated):
            assert await log.read(-1, 1, timeout=0) == [(0, record(0) * 3)]
        await log.close()

    run(body)


def test_a_new_named_reader_holds_the_records_after_its_position(backend: Backend) -> None:
    """A reader that has only been positioned (nothing read, nothing acknowledged yet)."""

    async def body() -> None:
        log = await opened(backend)
        for start in range(0, 2000, 500):
            await append_all(log, [record(i) * 3 for i in range(start, start + 500)])
        assert await log.read(1999, 10, timeout=0, consumer="rules") == []
        assert await log.read(99, 1, timeout=0, consumer="store-writer") == [(100, record(100) * 3)]
        await log.truncate_before(2000)
        assert [o for o, _ in await read_named(log, "store-writer", 99, 1999, 700)] == list(
            range(100, 2000)
        )
        await log.close()

    run(body)
