"""The embedded ingest log: segment files on local disk, group-committed.

``append`` only queues the record and returns a future. One committer thread takes
everything queued, frames it, writes it and fsyncs it, then hands the batch back to the
event loop, which resolves its futures in order. While one batch is being synced the next
one accumulates, so the number of fsyncs per second is bounded by the disk, not by the
message rate; ``commit_interval`` additionally spaces commits so that a burst of
single messages does not turn into a burst of tiny fsyncs: the committer takes the queue
once appends have paused for ``commit_interval`` (a burst goes in one commit), or
``max_linger`` after the first record of a steady stream.

The committer is a thread of its own rather than a task, so that taking the next batch
never waits for a turn of the event loop: at saturation one turn of the gateway (reading
every ready connection) lasts a few hundred milliseconds, and a task-driven committer
started each commit a turn late and published it a turn later still. Now the records
appended during one turn are written while it runs and become durable (acknowledged,
readable) at the start of the next. The queue is shared under one lock; offsets, segment
rolls and the file descriptor belong to the thread, everything readers see (durable
offset, tail, segment bases) to the loop.

Resource handling: ``start`` takes an exclusive ``flock`` on ``LOCK`` (a second process
on the same directory would interleave frames) and owns the committer thread; ``close``
commits what is queued, joins the thread and releases the lock.

Error handling: a failed write or fsync fails every queued future with
:class:`IngestLogFailed` and the log refuses further appends (DESIGN §7: stop acking,
recover by reopening; never retry an fsync).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        max_linger: float = 0.05,
        flush_bytes: int = 4 * MiB,
        tail_bytes: int = 32 * MiB,
    ) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.commit_interval = commit_interval
        self.max_linger = max_linger
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
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The queue (_pending, _futures, _pending_bytes, _pending_since, _syncing) is
        # shared with the committer thread under this lock; _queued wakes the thread.
        self._lock = threading.Lock()
        self._queued = threading.Condition(self._lock)
        self._committed = asyncio.Event()  # replaced after each commit; wakes readers
        self._next_offset = 0  # committer thread: the offset of the next record written
        self._written = 0  # committer thread: bytes in the newest segment
        # Named readers, in memory only (their owners keep their offsets): name ->
        # [acknowledged offset, offset their last read ended at].
        self._readers: dict[str, list[int]] = {}
        self._pending_since = 0.0  # wall clock at the first append of ``_pending``
        self._last_append = 0.0  # monotonic clock at the last append
        self._syncing: deque[float] = deque()  # the same, of each batch taken, unpublished

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Open or create the log, cut a torn tail, and start the committer."""
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._open)
        self._thread = threading.Thread(
            target=self._commit_thread, name=f"ingest-log:{self.directory}", daemon=True
        )
        self._thread.start()

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
        self._next_offset, self._written = next_offset, self._active_size

    async def close(self) -> None:
        """Commit what is queued, resolve its futures, stop the committer, release files."""
        with self._lock:
            self._closing = True
            self._queued.notify()
        if self._thread is not None:
            # The thread's last publish callbacks are queued before this join's result.
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        for fd in (self._fd, self._lock_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):  # after a failure the fd may be gone
                    os.close(fd)  # closing the lock descriptor releases the flock
        self._fd = self._lock_fd = -1

    # -- hot path --------------------------------------------------------------------

    @property
    def durable_offset(self) -> int:
        return self._durable

    def backlog(self, after: int) -> int:
        return max(0, self._durable - after)

    @property
    def unsynced_since(self) -> float | None:
        """Wall-clock time (epoch s) of the oldest append that is not durable yet, or None
        when every append is. A record stamped with the appender's clock (the gateway's
        receive time) before that moment is durable: a reader that has read up to
        :attr:`durable_offset` has seen it."""
        with self._lock:
            if self._syncing:
                return self._syncing[0]
            return self._pending_since if self._pending else None

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
        with self._lock:
            if not self._pending:
                self._pending_since = time.time()
                self._queued.notify()
            self._last_append = time.monotonic()
            self._pending.append(record)
            self._futures.append(future)
            self._pending_bytes += len(record)
            if self._pending_bytes >= self.flush_bytes:
                self._queued.notify()
        self.stats.appended += 1
        return future

    # -- committer -------------------------------------------------------------------

    def _commit_thread(self) -> None:
        last = 0.0
        while True:
            with self._queued:
                batch = self._take(last)
            if batch is None:
                return
            records, futures = batch
            last = time.monotonic()
            first, roll = self._next_offset, self._written >= self.segment_bytes
            try:
                written, fsync_s = self._write(records, first, roll)
            except Exception as exc:  # any failure means "maybe not durable": stop acking
                self._call(self._fail, exc, futures)
                return
            self._next_offset += len(records)
            self._written = written if roll else self._written + written
            self._call(self._publish, records, futures, first, written, fsync_s, roll)

    def _take(self, last: float) -> tuple[list[bytes], list[asyncio.Future[int]]] | None:
        """Committer thread, lock held: wait for records, linger, take them all (None:
        closing with nothing queued)."""
        while not self._pending and not self._closing:
            self._queued.wait()
        if not self._pending:
            return None
        # Until appends pause for ``commit_interval`` (this thread may wake in the middle
        # of a burst the loop is appending), at most ``max_linger`` after the first, and
        # ``commit_interval`` after the previous commit; at once when the queue is large.
        # A pause is confirmed by waiting once more: the appender may only have been held
        # up (a garbage collection, the OS scheduler) while holding the GIL.
        first, seen = time.monotonic(), -1
        while not self._closing and self._pending_bytes < self.flush_bytes:
            now = time.monotonic()
            if now >= first + self.max_linger:
                break
            delay = max(last, self._last_append) + self.commit_interval - now
            if delay > 0:
                self._queued.wait(delay)
                continue
            if len(self._pending) == seen:
                break
            seen = len(self._pending)
            self._queued.wait(0.001)
        records, futures = self._pending, self._futures
        self._syncing.append(self._pending_since)
        self._pending, self._futures, self._pending_bytes = [], [], 0
        return records, futures

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        """Committer thread: run ``callback`` on the loop (in order)."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            self._loop.call_soon_threadsafe(callback, *args)

    def _write(self, records: list[bytes], first: int, roll: bool) -> tuple[int, float]:
        """Committer thread: frame, write, fsync. Returns (bytes written, fsync seconds).

        Only this thread touches ``_fd`` while it runs (one batch at a time).
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
        roll: bool,
    ) -> None:
        if roll:
            self._bases.append(first)
            self._active_size = 0
        with self._lock:
            self._syncing.popleft()
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
        with self._lock:  # the committer has stopped: what is queued will never be written
            queued, self._futures = self._futures, []
            self._pending, self._pending_bytes = [], 0
            self._syncing.clear()  # those records will never be read
        for future in (*futures, *queued):
            if not future.done():
                future.set_exception(self._failed)

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
            if self._thread is None:
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
