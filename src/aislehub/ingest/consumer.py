"""The store writer: moves durable log records into the telemetry store, in batches.

Loop: read up to ``batch_max`` durable records after the last one read, unpack them into
one Arrow table and drop device re-sends (Python, O(1) per record, on the event loop in
~25 ms turns), then hand the table to the store in a worker thread: one transaction
for the rows and the offset, the per-field work inside the database engine, which
releases the GIL. While one batch is being stored the next is read and prepared; they
commit strictly in log order. Meanwhile more records accumulate in the log, so batches
grow with the load.

Guarantees: a record is stored at most once per offset (the offset commits with the
rows, and a replayed batch is refused by the store) and at least once overall (the
writer resumes from the committed offset). A failed write is retried after a pause; the
log keeps the records meanwhile.

The writer is a named reader of the log (its ``consumer_name``, JetStream: the durable
consumer of that name): it reads with its name and acknowledges each batch to the log
after the store committed it. The store's committed offset stays authoritative: on a
restart the writer reads after it, and the log repositions the reader there whatever it
had acknowledged (an ack lost in a crash is made good; records acknowledged but missing
from the store, as after restoring an older store backup, are read and stored again).

Resource handling: ``start`` spawns one named task; the store calls run one at a time
in the loop's default executor. ``close`` drains what the log holds as durable at that
moment, waits for the store call in flight, then joins the task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from aislehub.ingest.columns import DecodeStats, rows_from_encoded, to_batch
from aislehub.ingest.dedupe import DedupeWindow, MessageKey
from aislehub.ingest.log import IngestLog, IngestLogError
from aislehub.store.telemetry import Catalog, TelemetryBatch, TelemetryStore

__all__ = ["DEFAULT_BATCH_MAX", "StoreWriter", "WriterStats"]

log = logging.getLogger(__name__)

# The cap on one read. Batches are as large as what accumulated while the previous one
# was stored, so the cap only matters when catching up, and there bigger is cheaper:
# DuckDB's CPU per record falls from ~15 us (10,000 or 20,000 records) to ~10 (40,000 or
# more), once a batch fills whole row groups that skip the write-ahead log. 50,000
# records take ~0.6 s to prepare and store on the idle 2-core reference machine.
DEFAULT_BATCH_MAX = 50_000
_SLICE = 1_000  # records decoded at a time (~5 ms) ...
_TURN = 0.025  # ... until this long, then the event loop has a turn
_RETRY_PAUSE = 1.0  # after a failed store write; the log retains the batch meanwhile
_TRUNCATE_EVERY = 10.0  # seconds; deleting a segment is cheap but not free
_IDLE_SYNC = 0.25  # seconds between catalog checks while the log is quiet


@dataclass(slots=True)
class _Write:
    """A batch in the store's hands: the worker thread's future, and what to retry."""

    batch: TelemetryBatch
    last: int  # log offset of its last record
    records: int  # log records it came from (re-sends included)
    future: asyncio.Future[None]


@dataclass(slots=True)
class WriterStats:
    batches: int = 0
    records: int = 0  # log records consumed (including re-sends dropped)
    duplicates: int = 0  # re-sends dropped by the dedupe window
    decode_seconds: float = 0.0  # records to batch table, on the event loop
    write_seconds: float = 0.0  # the store's part, in a worker thread
    write_errors: int = 0
    decode: DecodeStats = field(default_factory=DecodeStats)


class StoreWriter:
    """Consumer ``consumer_name`` of ``log`` that writes into ``store``."""

    def __init__(
        self,
        log: IngestLog,
        store: TelemetryStore,
        consumer_name: str = "store",
        batch_max: int = DEFAULT_BATCH_MAX,
        dedupe_window: int = 100_000,
        truncate_log: bool = True,
        poll_interval: float = 0.05,
        catalog: Callable[[], Catalog | None] | None = None,
    ) -> None:
        self._log = log
        self._store = store
        # Typed ingest: polled before each write, returns a catalog when it changed; one
        # that the store failed to take is kept and offered again with the retried batch.
        self._catalog = catalog
        self._unsynced: Catalog | None = None
        self._idle_synced = 0.0  # monotonic time of the last catalog check while idle
        self.name = consumer_name
        self.batch_max = batch_max
        # Retention by this writer alone is only right while it is the log's only
        # consumer; with several, pass False and let whoever knows them all truncate.
        self.truncate_log = truncate_log
        self.poll_interval = poll_interval  # how often an idle writer notices close()
        self.stats = WriterStats()
        self._window = DedupeWindow(dedupe_window)
        self._stored = -1
        self._stored_changed = asyncio.Event()
        self._drain_to: int | None = None  # set by close(): the durable offset to reach
        self._task: asyncio.Task[None] | None = None
        self._last_truncate = time.monotonic()

    @property
    def stored_offset(self) -> int:
        """The last log offset whose batch is committed in the store."""
        return self._stored

    @property
    def lag(self) -> int:
        """Durable log records not yet stored."""
        return self._log.backlog(self._stored)

    async def start(self) -> None:
        """Resume from the store's committed offset and start the writer task."""
        self._stored = await asyncio.to_thread(self._store.committed_offset, self.name)
        if self._stored > self._log.durable_offset:
            # The store only ever commits offsets the log had made durable, so the log
            # was replaced or lost. Resuming would silently skip the new log's first
            # records (their offsets look already stored); refuse instead.
            raise IngestLogError(
                f"store consumer {self.name!r} is at offset {self._stored} but the log "
                f"ends at {self._log.durable_offset}: restore the log directory, or delete "
                f"the consumer's row from consumer_offsets to start over"
            )
        keys = await asyncio.to_thread(self._store.recent_message_keys, self._window.capacity)
        self._window.remember(reversed(keys))  # oldest first, like live traffic
        self._task = asyncio.create_task(self._run(), name=f"store-writer:{self.name}")

    async def close(self) -> None:
        """Store everything durable in the log now, then stop."""
        self._drain_to = self._log.durable_offset
        if self._task is not None:
            await self._task
            self._task = None

    async def wait_stored(self, offset: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until ``offset`` is queryable; False after ``timeout`` seconds.

        (A parameter rather than ``asyncio.timeout`` so tests and the benchmark can poll
        many offsets with one deadline each without nesting scopes.)
        """
        deadline = time.monotonic() + timeout
        while self._stored < offset:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._stored_changed.wait(), remaining)
            except TimeoutError:
                return False
        return True

    async def _run(self) -> None:
        read_to = self._stored  # the last offset read (stored or being stored)
        writing: _Write | None = None
        try:
            while self._drain_to is None or read_to < self._drain_to:
                entries = await self._log.read(
                    read_to, self.batch_max, self.poll_interval, consumer=self.name
                )
                if not entries and writing is None:
                    await self._sync_idle()
                batch = await self._prepare_or_pause(entries) if entries else None
                # The previous batch was being stored meanwhile; offsets commit in order.
                if writing is not None and not await self._finish(writing):
                    return  # closing, and the store refuses writes: do not hang close()
                writing = None
                if batch is not None:
                    writing = self._start(batch, entries)
                    read_to = entries[-1][0]
                elif entries and self._drain_to is not None:
                    return  # closing, and the records cannot be prepared
                await self._maybe_truncate()
            if writing is not None:
                await self._finish(writing)
        except Exception:
            # A log that cannot be read (corrupt, truncated under us) needs an operator;
            # say so now rather than only when close() re-raises.
            log.exception("store writer %s stopped", self.name)
            raise

    async def _prepare(self, entries: list[tuple[int, bytes]]) -> TelemetryBatch:
        """The batch table for ``entries``, on the event loop, ~25 ms of it per turn.

        Here rather than in the worker thread: the gateway's loop gives the GIL up and
        takes it back at every callback, and a thread waiting for it then rarely wins
        (CPython's convoy effect), so under load a thread's Python work stalls for
        seconds. On the loop it costs the gateway the same CPU and never waits. Re-sends
        are dropped here too; their keys are remembered once the whole batch is prepared
        (it is stored before any later batch, however many retries that takes).
        """
        stats, tables = self.stats, []
        keys: set[MessageKey] = set()
        turn = time.perf_counter()
        for first in range(0, len(entries), _SLICE):
            started = time.perf_counter()
            decoded = rows_from_encoded(entries[first : first + _SLICE], stats.decode)
            rows, keys = self._window.filter(decoded, keys)
            stats.duplicates += len(decoded) - len(rows)
            tables.append(to_batch(rows).messages)
            now = time.perf_counter()
            stats.decode_seconds += now - started
            if now - turn >= _TURN:
                await asyncio.sleep(0)  # let the gateway run
                turn = time.perf_counter()
        self._window.remember(keys)
        return TelemetryBatch(pa.concat_tables(tables))

    async def _prepare_or_pause(self, entries: list[tuple[int, bytes]]) -> TelemetryBatch | None:
        try:
            return await self._prepare(entries)
        except Exception:  # a bug: the log keeps the records, try them again later
            self.stats.write_errors += 1
            last = entries[-1][0]
            log.exception("store writer %s: preparing up to offset %d failed", self.name, last)
            await asyncio.sleep(_RETRY_PAUSE)
            return None

    def _start(self, batch: TelemetryBatch, entries: list[tuple[int, bytes]]) -> _Write:
        last = entries[-1][0]
        return _Write(batch, last, len(entries), self._submit(batch, last))

    def _submit(self, batch: TelemetryBatch, last: int) -> asyncio.Future[None]:
        return asyncio.get_running_loop().run_in_executor(None, self._store_batch, batch, last)

    async def _sync_idle(self) -> None:
        """With no record to write, still give the store a changed catalog (a template
        assigned a moment ago answers queries over what is stored), every so often."""
        now = time.monotonic()
        if self._catalog is None or now - self._idle_synced < _IDLE_SYNC:
            return
        self._idle_synced = now
        try:
            await asyncio.to_thread(self._sync_catalog)
        except Exception as exc:  # kept in _unsynced: offered again with the next write
            log.warning("store writer %s: catalog not synced yet: %s", self.name, exc)

    def _sync_catalog(self) -> None:
        """Worker thread, never beside a batch write (they share the store's writer)."""
        if self._catalog is not None and (fresh := self._catalog()) is not None:
            self._unsynced = fresh
        if self._unsynced is not None:
            self._store.sync_catalog(self._unsynced)
            self._unsynced = None

    def _store_batch(self, batch: TelemetryBatch, last: int) -> None:
        """Worker thread: rows and offset, atomically; DuckDB releases the GIL meanwhile."""
        started = time.perf_counter()
        self._sync_catalog()
        counts = self._store.write_batch(self.name, batch, last)
        if counts is not None:
            self.stats.decode.add(counts)
        self.stats.write_seconds += time.perf_counter() - started

    async def _finish(self, writing: _Write) -> bool:
        """Wait for ``writing``, retrying it after a pause while it fails (not if closing)."""
        while True:
            try:
                await writing.future
                break
            except Exception:
                self.stats.write_errors += 1
                log.exception(
                    "store writer %s: batch up to offset %d failed", self.name, writing.last
                )
                await asyncio.sleep(_RETRY_PAUSE)
                if self._drain_to is not None:
                    return False
            writing.future = self._submit(writing.batch, writing.last)
        self.stats.batches += 1
        self.stats.records += writing.records
        self._stored = writing.last
        changed, self._stored_changed = self._stored_changed, asyncio.Event()
        changed.set()
        # Only now, after the store's commit: the log may drop it (retention) and shows
        # the reader's position; the store's offset stays what a restart resumes from.
        await self._log.acknowledge(self.name, writing.last)
        return True

    async def _maybe_truncate(self) -> None:
        now = time.monotonic()
        if self.truncate_log and now - self._last_truncate >= _TRUNCATE_EVERY:
            self._last_truncate = now
            await self._log.truncate_before(self._stored + 1)
