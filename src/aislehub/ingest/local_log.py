"""The embedded ingest log: segment files on local disk, group-committed.

``append`` only queues the record and returns a future. One committer task takes
everything queued, frames it, writes it and fsyncs it in a worker thread, then resolves
the futures of that batch in order. While one batch is being synced the next one
accumulates, so the number of fsyncs per second is bounded by the disk, not by the
message rate; ``commit_interval`` additionally spaces commits so that a burst of
single messages does not turn into a burst of tiny fsyncs.

Resource handling: ``start`` takes an exclusive ``flock`` on ``LOCK`` (a second process
on the same directory would interleave frames) and owns the committer task; ``close``
commits what is queued, joins the task and releases the lock.

Error handling: a failed write or fsync fails every queued future with
:class:`IngestLogFailed` and the log refuses further appends (DESIGN §7: stop acking,
recover by reopening; never retry an fsync).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from aislehub.ingest import segments
from aislehub.ingest.log import IngestLogClosed, IngestLogFailed
from aislehub.ingest.tail import FileCursor, Tail, read_files

__all__ = ["LocalLog", "LogStats"]

MiB = 1024 * 1024


@dataclass(slots=True)
class LogStats:
    """Counters for /metrics and the benchmark."""

    appended: int = 0  # records handed to append()
    committed_records: int = 0
    committed_batches: int = 0  # = number of fsyncs
    bytes_written: int = 0
    fsync_seconds: float = 0.0  # total time spent in fsync
    fsync_max_seconds: float = 0.0


class LocalLog:
    """Segmented, CRC-framed, group-committed append-only log in ``directory``."""

    def __init__(
        self,
        directory: Path,
        segment_bytes: int = 64 * MiB,
        commit_interval: float = 0.002,
        flush_bytes: int = 4 * MiB,
        tail_bytes: int = 32 * MiB,
    ) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.commit_interval = commit_interval
        self.flush_bytes = flush_bytes  # commit at once, without waiting, above this
        self.stats = LogStats()
        self._tail = Tail(tail_bytes)
        self._cursors: dict[int, FileCursor] = {}
        self._pending: list[bytes] = []
        self._futures: list[asyncio.Future[int]] = []
        self._pending_bytes = 0
        self._durable = -1
        self._bases: list[int] = []  # segment base offsets; mutated on the loop thread only
        self._active_size = 0  # durable bytes in the newest segment
        self._fd = -1
        self._lock_fd = -1
        self._failed: IngestLogFailed | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()  # something is queued
        self._hurry = asyncio.Event()  # enough is queued (or closing): stop lingering
        self._committed = asyncio.Event()  # replaced after each commit; wakes readers
        self._last_commit = 0.0
        # Named readers, in memory only (their owners keep their offsets): name ->
        # [acknowledged offset, offset their last read ended at].
        self._readers: dict[str, list[int]] = {}
        self._pending_since = 0.0  # wall clock at the first append of ``_pending``
        self._syncing_since: float | None = None  # the same, for the batch being written

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Open or create the log, cut a torn tail, and start the committer."""
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._open)
        self._task = asyncio.create_task(self._commit_loop(), name=f"ingest-log:{self.directory}")

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = segments.lock_directory(self.directory)
        try:
            self._bases = segments.list_segments(self.directory) or [0]
            base = self._bases[-1]
            self._fd = segments.create_segment(self.directory, base)
            self._active_size, next_offset = segments.recover_segment(self.directory, base)
        except BaseException:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise
        self._durable = next_offset - 1

    async def close(self) -> None:
        """Commit what is queued, resolve its futures, stop the committer, release files."""
        self._closing = True
        self._wake.set()
        self._hurry.set()
        if self._task is not None:
            await self._task
            self._task = None
        for fd in (self._fd, self._lock_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):  # after a failure the fd may be gone
                    os.close(fd)  # closing the lock descriptor releases the flock
        self._fd = self._lock_fd = -1

    # -- hot path --------------------------------------------------------------------

    @property
    def durable_offset(self) -> int:
        return self._durable

    @property
    def unsynced_since(self) -> float | None:
        """Wall-clock time (epoch s) of the oldest append that is not durable yet, or None
        when every append is. A record stamped with the appender's clock (the gateway's
        receive time) before that moment is durable: a reader that has read up to
        :attr:`durable_offset` has seen it."""
        return (
            self._syncing_since
            if self._syncing_since is not None
            else (self._pending_since if self._pending else None)
        )

    @property
    def pending_bytes(self) -> int:
        """Bytes queued but not yet durable: the gateway pauses reading above a limit."""
        return self._pending_bytes

    def append(self, record: bytes, subject: str | None = None) -> asyncio.Future[int]:
        """Queue ``record``; the future resolves to its offset once fsynced (one sequence
        for every subject)."""
        if self._failed is not None:
            raise IngestLogFailed(str(self._failed)) from self._failed.__cause__
        if self._closing or self._loop is None:
            raise IngestLogClosed("append before start() or after close()")
        future: asyncio.Future[int] = self._loop.create_future()
        if not self._pending:
            self._pending_since = time.time()
        self._pending.append(record)
        self._futures.append(future)
        self._pending_bytes += len(record)
        self.stats.appended += 1
        self._wake.set()
        if self._pending_bytes >= self.flush_bytes:
            self._hurry.set()
        return future

    # -- committer -------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        while not (self._closing and not self._pending) and self._failed is None:
            await self._wake.wait()
            await self._linger()
            self._wake.clear()
            if self._pending:
                await self._commit()

    async def _linger(self) -> None:
        """Space commits ``commit_interval`` apart unless the queue is already large."""
        delay = self._last_commit + self.commit_interval - time.monotonic()
        if delay <= 0 or self._hurry.is_set():
            return
        timer = asyncio.get_running_loop().call_later(delay, self._hurry.set)
        await self._hurry.wait()
        timer.cancel()

    async def _commit(self) -> None:
        records, futures = self._pending, self._futures
        self._syncing_since = self._pending_since
        self._pending, self._futures, self._pending_bytes = [], [], 0
        if not self._closing:
            self._hurry.clear()
        first = self._durable + 1
        roll = self._active_size >= self.segment_bytes
        self._last_commit = time.monotonic()
        try:
            written, fsync_s = await asyncio.to_thread(self._write, records, first, roll)
        except Exception as exc:  # any failure means "maybe not durable": stop acking
            self._syncing_since = None  # those records will never be read
            self._fail(exc, futures)
            return
        if roll:
            self._bases.append(first)
            self._active_size = 0
        self._syncing_since = None
        self._publish(records, futures, first, written, fsync_s)

    def _write(self, records: list[bytes], first: int, roll: bool) -> tuple[int, float]:
        """Worker thread: frame, write, fsync. Returns (bytes written, fsync seconds).

        Only this thread touches ``_fd`` while the committer runs (one batch at a time).
        """
        data = segments.frame_batch(records, first)
        if roll:
            # The old segment is already fsynced up to its end, so it can never have a
            # torn tail; only the new one may, and recovery looks at the newest only.
            old, self._fd = self._fd, segments.create_segment(self.directory, first)
            os.close(old)
        segments.write_all(self._fd, data)
        started = time.perf_counter()
        segments.sync(self._fd)
        return len(data), time.perf_counter() - started

    def _publish(
        self,
        records: list[bytes],
        futures: list[asyncio.Future[int]],
        first: int,
        written: int,
        fsync_s: float,
    ) -> None:
        self._durable = first + len(records) - 1
        self._active_size += written
        self._tail.add(first, records)
        for offset, future in enumerate(futures, first):
            if not future.done():  # the appender may have cancelled it
                future.set_result(offset)
        stats = self.stats
        stats.committed_records += len(records)
        stats.committed_batches += 1
        stats.bytes_written += written
        stats.fsync_seconds += fsync_s
        stats.fsync_max_seconds = max(stats.fsync_max_seconds, fsync_s)
        committed, self._committed = self._committed, asyncio.Event()
        committed.set()

    def _fail(self, exc: Exception, futures: list[asyncio.Future[int]]) -> None:
        self._failed = IngestLogFailed(f"ingest log write failed, acknowledging nothing: {exc}")
        self._failed.__cause__ = exc
        for future in (*futures, *self._futures):
            if not future.done():
                future.set_exception(self._failed)
        self._pending, self._futures, self._pending_bytes = [], [], 0

    # -- readers ---------------------------------------------------------------------

    async def read(
        self,
        after: int,
        max_records: int,
        timeout: float,  # noqa: ASYNC109 - see IngestLog.read
        *,
        consumer: str | None = None,
    ) -> list[tuple[int, bytes]]:
        """Durable records after ``after``: from the memory tail, else from the files."""
        if consumer is not None:
            reader = self._readers.setdefault(consumer, [after, after])
            if reader[1] != after:  # not continuing its last read: repositioned
                reader[:] = [after, after]
        records = await self._read(after, max_records, timeout)
        if consumer is not None and records:
            self._readers[consumer][1] = records[-1][0]
        return records

    async def _read(self, after: int, max_records: int, wait: float) -> list[tuple[int, bytes]]:
        if after >= self._durable and not await self._wait_commit(after, wait):
            return []
        hit = self._tail.read(after, max_records)
        if hit is not None:
            return hit
        cursor = self._cursors.pop(after, None)
        records, cursor = await asyncio.to_thread(
            read_files,
            self.directory,
            tuple(self._bases),
            self._active_size,
            min(self._durable, after + max_records),
            after,
            cursor,
        )
        if cursor is not None:
            self._remember(cursor)
        return records

    async def _wait_commit(self, after: int, wait: float) -> bool:
        deadline = time.monotonic() + wait
        while after >= self._durable:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._task is None:
                # Closed (or never started): nothing will arrive. Sleep anyway, so that a
                # reader polling in a loop yields to the event loop instead of spinning.
                await asyncio.sleep(remaining)
                return False
            try:
                await asyncio.wait_for(self._committed.wait(), remaining)
            except TimeoutError:
                return False
        return True

    async def acknowledge(self, consumer: str, offset: int) -> None:
        """Up to ``offset``, at most to where ``consumer`` last read (in memory)."""
        reader = self._readers.get(consumer)
        if reader is not None:
            reader[0] = max(reader[0], min(offset, reader[1]))

    async def acknowledged(self, consumer: str) -> int | None:
        reader = self._readers.get(consumer)
        return None if reader is None else reader[0]

    def _remember(self, cursor: FileCursor) -> None:
        # A few cursors let several consumers replay at once without rescanning.
        self._cursors[cursor.next_offset - 1] = cursor
        while len(self._cursors) > 16:
            del self._cursors[next(iter(self._cursors))]

    async def truncate_before(self, offset: int) -> None:
        """Delete whole segments whose records are all below ``offset`` and acknowledged
        by every named reader."""
        offset = min([offset, *(acked + 1 for acked, _ in self._readers.values())])
        keep = segments.segment_for(self._bases, offset)
        doomed, self._bases = self._bases[: max(keep, 0)], self._bases[max(keep, 0) :]
        if doomed:
            await asyncio.to_thread(_unlink_segments, self.directory, doomed)


def _unlink_segments(directory: Path, bases: list[int]) -> None:
    # No directory fsync: if a deletion is lost in a crash the segment just comes back,
    # which is harmless for a log that is only ever read from committed offsets on.
    for base in bases:
        segments.segment_path(directory, base).unlink(missing_ok=True)
