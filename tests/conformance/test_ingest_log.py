"""Conformance suite for :class:`aislehub.ingest.log.IngestLog`: every backend passes it.

A backend registers a factory in ``BACKENDS``: given a fresh temporary directory it returns
a ``Backend`` whose ``new()`` builds an unstarted log *on the same storage* each time (the
reopen tests call it twice) and whose ``cleanup()`` removes that storage. ``local`` is the
embedded segmented log (small segments, so retention has something to drop); ``nats`` is a
JetStream stream of its own on the machine's NATS server (see ``tests/services.py``).

Offsets are increasing, not necessarily dense (JetStream numbers a record by its message
and its place in it), so the tests name records by the offsets their appends resolved to
(``at[i]`` for ``record(i)``) and never compute one. Appends awaited together form a
*group*: a log may keep a group in one unit of storage and acknowledge a reader's
position only at such a unit's end, so an acknowledgement inside a group may stay at the
group's start; at a group's end it is exact.

Backend-specific behaviour (fsync batching, torn tails, segment files, NATS disconnects)
is tested beside each implementation in ``tests/ingest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
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
    """One group: the records' offsets."""
    return list(await asyncio.gather(*(log.append(r) for r in records)))


async def append_groups(log: IngestLog, sizes: list[int], scale: int = 1) -> list[int]:
    """``record(i) * scale`` for i = 0, 1, ... in groups of ``sizes``: their offsets."""
    at: list[int] = []
    for size in sizes:
        at += await append_all(log, [record(i) * scale for i in range(len(at), len(at) + size)])
    return at


def increasing(offsets: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(offsets))


def test_a_new_log_is_empty(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        assert log.durable_offset == -1
        assert log.backlog(-1) == 0
        assert await log.read(-1, 10, timeout=0) == []
        await log.close()

    run(body)


def test_appends_resolve_to_increasing_offsets_in_order(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        resolved: list[int] = []
        futures = [log.append(record(i)) for i in range(3000)]
        for f in futures:
            f.add_done_callback(lambda f: resolved.append(f.result()))
        at = await asyncio.gather(*futures)
        assert at[0] >= 0 and increasing(at)
        assert resolved == at  # acknowledged in append order
        assert log.durable_offset == at[-1]
        assert log.backlog(-1) == 3000 and log.backlog(at[-1]) == 0
        assert await read_all(log, chunk=700) == [(at[i], record(i)) for i in range(3000)]
        await log.close()

    run(body)


def test_read_takes_records_after_an_offset_up_to_a_maximum(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        at = await append_all(log, [record(i) for i in range(100)])
        assert await log.read(-1, 3, timeout=0) == [(at[i], record(i)) for i in range(3)]
        assert await log.read(at[49], 2, timeout=0) == [(at[50], record(50)), (at[51], record(51))]
        assert await log.read(at[10], 1, timeout=0) == [(at[11], record(11))]  # going back
        assert await log.read(at[97], 10, timeout=1) == [(at[98], record(98)), (at[99], record(99))]
        assert await log.read(at[99], 10, timeout=0) == []
        await log.close()

    run(body)


def test_read_waits_for_the_next_append(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        reader = asyncio.create_task(log.read(-1, 10, timeout=5))
        await asyncio.sleep(0.05)
        late = await log.append(b"late")
        assert await reader == [(late, b"late")]
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await log.read(late, 10, timeout=0.2) == []  # times out empty
        assert 0.15 <= loop.time() - started < 2
        await log.close()

    run(body)


def test_reads_never_pass_the_durable_offset(backend: Backend) -> None:
    """A concurrent reader sees only acknowledged records, each at its acknowledged offset."""

    async def body() -> None:
        log = await opened(backend)
        seen: list[tuple[int, bytes]] = []
        done = asyncio.Event()

        async def reader() -> None:
            after = -1
            while len(seen) < 2000:
                batch = await log.read(after, 150, timeout=2)
                assert batch and batch[-1][0] <= log.durable_offset
                seen.extend(batch)
                after = batch[-1][0]
            done.set()

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


def test_concurrent_appenders_get_distinct_increasing_offsets(backend: Backend) -> None:
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
        assert len({offset for offset, _ in acked}) == 2400
        for result in results:  # each appender's records keep its order
            assert increasing([o for o, _ in result])
        assert await read_all(log) == acked
        await log.close()

    run(body)


def test_truncate_before_keeps_what_is_asked_for(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        at = await append_groups(log, [500] * 6, scale=3)
        await log.truncate_before(at[2000])
        # Retention is best effort: what a backend still holds below 2000 it may return,
        # what it dropped is OffsetTruncated, never silently skipped.
        with contextlib.suppress(OffsetTruncated):
            assert await log.read(-1, 10, timeout=0) == [(at[i], record(i) * 3) for i in range(10)]
        assert await log.read(at[1999], 2, timeout=0) == [
            (at[2000], record(2000) * 3),
            (at[2001], record(2001) * 3),
        ]
        assert [o for o, _ in await read_all(log, at[1999])] == at[2000:]
        await log.truncate_before(2**62)  # past the end: the offsets go on increasing
        more = await log.append(b"more")
        assert more > at[-1]
        assert await log.read(at[-1], 5, timeout=0) == [(more, b"more")]
        await log.close()

    run(body)


def test_close_settles_queued_appends_then_refuses_more(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        futures = [log.append(b"a"), log.append(b"b"), log.append(b"c")]
        await log.close()
        assert increasing([f.result() for f in futures])
        with pytest.raises(IngestLogClosed):
            log.append(b"d")
        reopened = await opened(backend)
        assert await read_all(reopened) == [
            (f.result(), r) for f, r in zip(futures, [b"a", b"b", b"c"], strict=True)
        ]
        await reopened.close()

    run(body)


def test_reopen_keeps_records_and_continues_offsets(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        at = await append_all(log, [record(i) for i in range(10)])
        await log.close()
        log = await opened(backend)
        assert log.durable_offset == at[9]
        at.append(await log.append(record(10)))
        assert at[10] > at[9]
        assert await read_all(log) == [(at[i], record(i)) for i in range(11)]
        await log.close()

    run(body)


def test_cancelled_append_does_not_break_the_others(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        futures = [log.append(record(i)) for i in range(3)]
        futures[1].cancel()
        last = await futures[2]
        records = await read_all(log)
        assert [r for _, r in records] == [record(i) for i in range(3)]
        assert records[0][0] == await futures[0] and records[2][0] == last
        await log.close()

    run(body)


def test_append_before_start_is_refused(backend: Backend) -> None:
    async def body() -> None:
        with pytest.raises(IngestLogClosed):
            backend.new().append(b"x")

    run(body)


# -- named readers ------------------------------------------------------------------------


async def read_named(
    log: IngestLog, name: str, at: list[int], after: int, upto: int, chunk: int = 100
) -> list[tuple[int, bytes]]:
    """Read as reader ``name`` the records after ``record(after)`` through ``record(upto)``
    (-1: from the start), acknowledging each batch as a consumer does after committing it."""
    out: list[tuple[int, bytes]] = []
    offset = -1 if after < 0 else at[after]
    while len(out) < upto - after:
        batch = await log.read(
            offset, min(chunk, upto - after - len(out)), timeout=1, consumer=name
        )
        assert batch, f"{name} got nothing after {offset}"
        out += batch
        offset = batch[-1][0]
        await log.acknowledge(name, offset)
    return out


def test_named_readers_keep_their_own_positions(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        at = await append_groups(log, [100, 20, 30, 50])  # groups end at 99, 119, 149, 199
        assert await log.acknowledged("store-writer") is None  # never read: unknown
        await log.acknowledge("store-writer", at[50])  # nothing read: nothing to acknowledge
        assert await log.acknowledged("store-writer") is None
        assert await read_named(log, "store-writer", at, -1, 149, chunk=40) == [
            (at[i], record(i)) for i in range(150)
        ]
        assert await read_named(log, "rules", at, 99, 119) == [
            (at[i], record(i)) for i in range(100, 120)
        ]
        assert await log.acknowledged("store-writer") == at[149]
        assert await log.acknowledged("rules") == at[119]
        # Each continues from its own position; the anonymous reader is not tracked.
        assert await log.read(at[119], 2, timeout=0, consumer="rules") == [
            (at[120], record(120)),
            (at[121], record(121)),
        ]
        assert await log.read(at[149], 2, timeout=0, consumer="store-writer") == [
            (at[150], record(150)),
            (at[151], record(151)),
        ]
        assert await log.read(at[10], 1, timeout=0) == [(at[11], record(11))]
        assert await log.acknowledged("store-writer") == at[149]  # read, not acknowledged
        await log.acknowledge("store-writer", at[151])  # inside the last group
        assert await log.acknowledged("store-writer") in (at[149], at[151])
        await log.close()

    run(body)


def test_a_named_reader_acknowledges_only_what_it_read(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        at = await append_groups(log, [10, 20, 70])  # groups end at 9, 29, 99
        assert len(await log.read(-1, 30, timeout=0, consumer="meter")) == 30
        await log.acknowledge("meter", at[9])  # part of a read batch
        assert await log.acknowledged("meter") == at[9]
        await log.acknowledge("meter", at[90])  # past what it read: only what it read
        assert await log.acknowledged("meter") == at[29]
        await log.acknowledge("meter", at[10])  # acknowledgements never go back
        assert await log.acknowledged("meter") == at[29]
        await log.close()

    run(body)


def test_a_named_reader_follows_the_offset_it_reads_after(backend: Backend) -> None:
    """The reader's own committed offset decides, whatever it acknowledged before."""

    async def body() -> None:
        log = await opened(backend)
        at = await append_groups(log, [40, 20, 20, 20])  # groups end at 39, 59, 79, 99
        await read_named(log, "store-writer", at, -1, 59, chunk=20)
        assert await log.acknowledged("store-writer") == at[59]
        # Back (the acknowledged records were not committed after all): read again.
        assert await log.read(at[39], 5, timeout=0, consumer="store-writer") == [
            (at[i], record(i)) for i in range(40, 45)
        ]
        assert await log.acknowledged("store-writer") == at[39]
        # Forward (committed, but the acknowledgement was lost): nothing in between.
        assert await log.read(at[79], 5, timeout=0, consumer="store-writer") == [
            (at[i], record(i)) for i in range(80, 85)
        ]
        assert await log.acknowledged("store-writer") == at[79]
        await log.close()

    run(body)


def test_retention_keeps_what_a_named_reader_has_not_acknowledged(backend: Backend) -> None:
    async def body() -> None:
        log = await opened(backend)
        at = await append_groups(log, [500] * 6, scale=3)
        await read_named(log, "store-writer", at, -1, 2999, chunk=1000)
        await read_named(log, "rules", at, -1, 499)
        await log.truncate_before(at[2999] + 1)  # the store writer is done; the rules not
        assert await read_named(log, "rules", at, 499, 2999, chunk=1000) == [
            (at[i], record(i) * 3) for i in range(500, 3000)
        ]
        await log.truncate_before(at[2000])  # both have acknowledged everything now
        assert [o for o, _ in await read_all(log, at[1999])] == at[2000:]
        # An anonymous reader holds nothing back, and never silently skips.
        with contextlib.suppress(OffsetTruncated):
            assert await log.read(-1, 1, timeout=0) == [(at[0], record(0) * 3)]
        await log.close()

    run(body)


def test_a_new_named_reader_holds_the_records_after_its_position(backend: Backend) -> None:
    """A reader that has only been positioned (nothing read, nothing acknowledged yet)."""

    async def body() -> None:
        log = await opened(backend)
        at = await append_groups(log, [100, 400, 500, 500, 500], scale=3)
        assert await log.read(at[1999], 10, timeout=0, consumer="rules") == []
        assert await log.read(at[99], 1, timeout=0, consumer="store-writer") == [
            (at[100], record(100) * 3)
        ]
        await log.truncate_before(at[1999] + 1)
        assert [o for o, _ in await read_named(log, "store-writer", at, 99, 1999, 700)] == at[
            100:2000
        ]
        await log.close()

    run(body)
