"""LocalLog only: group commit, fsync-gated reads, segments, torn tails, fsync failure, locking.

What every ingest log must do (offsets, reads, retention, close, reopen) is the conformance
suite, tests/conformance/test_ingest_log.py, which runs against this log too.
"""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from aislehub.ingest import segments
from aislehub.ingest.local_log import LocalLog
from aislehub.ingest.log import IngestLogClosed, IngestLogFailed, OffsetTruncated


def record(i: int) -> bytes:
    return b"record-%06d-" % i + bytes([i % 251]) * (i % 37)


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


async def opened(directory: Path, **kwargs: Any) -> LocalLog:
    log = LocalLog(directory, **kwargs)
    await log.start()
    return log


async def read_all(log: LocalLog, after: int = -1, chunk: int = 1000) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    while batch := await log.read(after, chunk, timeout=0):
        out += batch
        after = batch[-1][0]
    return out


def count_syncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = segments.sync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(segments, "sync", counting)
    return calls


def test_group_commit_one_fsync_for_a_burst(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = count_syncs(monkeypatch)

    async def body() -> None:
        log = await opened(tmp_path)
        resolved: list[int] = []
        futures = [log.append(record(i)) for i in range(5000)]
        for f in futures:
            f.add_done_callback(lambda f: resolved.append(f.result()))
        assert await asyncio.gather(*futures) == list(range(5000))
        assert resolved == list(range(5000))  # acknowledged in append order
        assert log.stats.committed_batches == len(syncs) <= 2
        assert log.stats.appended == log.stats.committed_records == 5000
        await log.close()

    run(body)


def test_paced_appends_share_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    syncs = count_syncs(monkeypatch)

    async def body() -> None:
        log = await opened(tmp_path, commit_interval=0.01)
        futures = []
        for i in range(2000):  # ~1 append per loop turn, like a busy gateway
            futures.append(log.append(record(i)))
            await asyncio.sleep(0)
        assert await asyncio.gather(*futures) == list(range(2000))
        assert len(syncs) < 200  # one fsync per 10 ms window, not one per message
        await log.close()

    run(body)


def test_reads_see_only_durable_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = segments.sync

    def slow_sync(fd: int) -> None:
        release.wait(5)
        real(fd)

    monkeypatch.setattr(segments, "sync", slow_sync)

    async def body() -> None:
        log = await opened(tmp_path)
        future = log.append(b"first")
        await asyncio.sleep(0.05)
        assert await log.read(-1, 10, timeout=0.05) == []  # written, not yet fsynced
        assert log.durable_offset == -1
        release.set()
        assert await log.read(-1, 10, timeout=2) == [(0, b"first")]
        assert future.result() == 0
        await log.close()

    run(body)


def test_close_cuts_the_commit_linger_short(tmp_path: Path) -> None:
    async def body() -> None:
        log = await opened(tmp_path, commit_interval=10)  # would linger for ages
        log.append(b"a")
        await asyncio.sleep(0)  # the committer is now lingering
        futures = [log.append(b"b"), log.append(b"c")]
        await log.close()
        assert [f.result() for f in futures] == [1, 2]
        with pytest.raises(IngestLogClosed):
            log.append(b"d")
        reopened = await opened(tmp_path)
        assert [r for _, r in await read_all(reopened)] == [b"a", b"b", b"c"]
        await reopened.close()

    run(body)


def test_segments_roll_and_replay_from_files(tmp_path: Path) -> None:
    async def body() -> None:
        log = await opened(tmp_path, segment_bytes=4096, tail_bytes=512)
        for start in range(0, 3000, 100):  # one commit per 100 records
            await asyncio.gather(*(log.append(record(i)) for i in range(start, start + 100)))
        assert len(segments.list_segments(tmp_path)) > 10
        expected = [(i, record(i)) for i in range(3000)]
        assert await read_all(log, chunk=7) == expected  # mostly from files: tiny tail
        assert await log.read(1499, 3, timeout=0) == expected[1500:1503]
        await log.close()
        log = await opened(tmp_path, segment_bytes=4096)
        assert await read_all(log, chunk=333) == expected
        await log.close()

    run(body)


def test_truncate_before_drops_whole_segments_only(tmp_path: Path) -> None:
    async def body() -> None:
        log = await opened(tmp_path, segment_bytes=4096, tail_bytes=0)
        for start in range(0, 2000, 100):
            await asyncio.gather(*(log.append(record(i)) for i in range(start, start + 100)))
        await log.truncate_before(1000)
        bases = segments.list_segments(tmp_path)
        assert bases[0] <= 1000 < bases[1]  # the segment holding 1000 stays
        with pytest.raises(OffsetTruncated):
            await log.read(-1, 10, timeout=0)
        assert await log.read(999, 2, timeout=0) == [(1000, record(1000)), (1001, record(1001))]
        await log.truncate_before(10**9)  # never deletes the segment being written
        assert len(segments.list_segments(tmp_path)) == 1
        assert await log.append(b"more") == 2000
        await log.close()

    run(body)


async def _write_and_close(directory: Path, n: int) -> None:
    log = await opened(directory)
    await asyncio.gather(*(log.append(record(i)) for i in range(n)))
    await log.close()


@pytest.mark.parametrize("cut", [1, 5, 16, 20])
def test_torn_tail_is_cut(tmp_path: Path, cut: int) -> None:
    async def body() -> None:
        await _write_and_close(tmp_path, 50)
        path = segments.segment_path(tmp_path, 0)
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.truncate(size - cut)  # the last frame loses its end (or header)
        log = await opened(tmp_path)
        assert log.durable_offset == 48
        assert await read_all(log) == [(i, record(i)) for i in range(49)]
        assert await log.append(b"after") == 49
        assert (await log.read(48, 5, timeout=0))[-1] == (49, b"after")
        await log.close()

    run(body)


@pytest.mark.parametrize("garbage", [b"\x00" * 64, b"\xff" * 3, bytes(range(256)) * 4])
def test_garbage_after_the_tail_is_cut(tmp_path: Path, garbage: bytes) -> None:
    async def body() -> None:
        await _write_and_close(tmp_path, 50)
        path = segments.segment_path(tmp_path, 0)
        size = path.stat().st_size
        with path.open("ab") as f:
            f.write(garbage)
        log = await opened(tmp_path)
        assert path.stat().st_size == size
        assert await read_all(log) == [(i, record(i)) for i in range(50)]
        await log.close()

    run(body)


def test_corrupt_frame_cuts_from_there(tmp_path: Path) -> None:
    """A flipped bit inside the last segment: keep the valid prefix, drop the rest."""

    async def body() -> None:
        await _write_and_close(tmp_path, 50)
        path = segments.segment_path(tmp_path, 0)
        data = bytearray(path.read_bytes())
        victim = sum(segments.FRAME_HEADER + len(record(i)) for i in range(30)) + 20
        data[victim] ^= 0x01
        path.write_bytes(bytes(data))
        log = await opened(tmp_path)
        assert await read_all(log) == [(i, record(i)) for i in range(30)]
        await log.close()

    run(body)


def test_failed_fsync_stops_acknowledging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    async def body() -> None:
        log = await opened(tmp_path)
        assert await log.append(b"ok") == 0
        monkeypatch.setattr(segments, "sync", broken)
        futures = [log.append(b"lost-%d" % i) for i in range(3)]
        for f in futures:
            with pytest.raises(IngestLogFailed):
                await f
        with pytest.raises(IngestLogFailed):
            log.append(b"refused")
        assert log.durable_offset == 0
        await log.close()
        monkeypatch.undo()
        # Recovery is reopening. The unacknowledged records may or may not be back
        # (their pages may have reached the disk); acknowledged ones must be.
        log = await opened(tmp_path)
        assert (await read_all(log))[0] == (0, b"ok")
        await log.close()

    run(body)


def test_a_second_process_cannot_open_the_log(tmp_path: Path) -> None:
    async def body() -> None:
        log = await opened(tmp_path)
        with pytest.raises(IngestLogFailed, match="in use"):
            await opened(tmp_path)
        await log.close()
        await (await opened(tmp_path)).close()  # the lock is released on close

    run(body)
