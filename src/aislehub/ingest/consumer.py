"""The store writer: moves durable log records into the telemetry store, in batches.

Loop: read up to ``batch_max`` durable records after the store's committed offset,
decode them into columns, drop device re-sends, and write rows + offset in one store
transaction. Decoding and writing run together in a worker thread, so the event loop
(which also runs the gateway) only ever waits for them; while a batch is being written
the next one accumulates in the log, so batches grow with the load.

Guarantees: a record is stored at most once per offset (the offset commits with the
rows, and a replayed batch is refused by the store) and at least once overall (the
writer resumes from the committed offset). A failed write is retried after a pause; the
log keeps the records meanwhile.

Resource handling: ``start`` spawns one named task; ``close`` drains what the log holds
as durable at that moment, then joins the task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from aislehub.ingest.columns import DecodeStats, rows_from_encoded, to_batch
from aislehub.ingest.dedupe import DedupeWindow
from aislehub.ingest.log import IngestLog, IngestLogError
from aislehub.store.telemetry import TelemetryStore

__all__ = ["DEFAULT_BATCH_MAX", "StoreWriter", "WriterStats"]

log = logging.getLogger(__name__)

# The cap on one read. Batches are as large as what accumulated while the previous one
# was written, so the cap only matters when catching up, and there bigger is cheaper:
# DuckDB's cost per record falls from ~25 us (1,000) to ~13 (5,000) and ~10 (20,000) on
# the 2-core reference machine. 20,000 records take ~0.4 s to decode and store, which
# keeps publish-to-queryable under a second while catching up.
DEFAULT_BATCH_MAX = 20_000
_RETRY_PAUSE = 1.0  # after a failed store write; the log retains the batch meanwhile
_TRUNCATE_EVERY = 10.0  # seconds; deleting a segment is cheap but not free


@dataclass(slots=True)
class WriterStats:
    batches: int = 0
    records: int = 0  # log records consumed (including re-sends dropped)
    duplicates: int = 0  # re-sends dropped by the dedupe window
    write_seconds: float = 0.0  # decode + store, in the worker thread
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
    ) -> None:
        self._log = log
        self._store = store
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
        return max(0, self._log.durable_offset - self._stored)

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
        try:
            while self._drain_to is None or self._stored < self._drain_to:
                entries = await self._log.read(self._stored, self.batch_max, self.poll_interval)
                if entries and not await self._write(entries) and self._drain_to is not None:
                    return  # closing, and the store refuses writes: do not hang close()
                await self._maybe_truncate()
        except Exception:
            # A log that cannot be read (corrupt, truncated under us) needs an operator;
            # say so now rather than only when close() re-raises.
            log.exception("store writer %s stopped", self.name)
            raise

    async def _write(self, entries: list[tuple[int, bytes]]) -> bool:
        try:
            await asyncio.to_thread(self._process, entries)
        except Exception:
            self.stats.write_errors += 1
            last = entries[-1][0]
            log.exception("store writer %s: batch up to offset %d failed", self.name, last)
            await asyncio.sleep(_RETRY_PAUSE)
            return False
        self._stored = entries[-1][0]
        changed, self._stored_changed = self._stored_changed, asyncio.Event()
        changed.set()
        return True

    def _process(self, entries: list[tuple[int, bytes]]) -> None:
        """Worker thread: decode, drop re-sends, store rows and offset atomically."""
        started = time.perf_counter()
        decoded = rows_from_encoded(entries, self.stats.decode)
        rows, keys = self._window.filter(decoded)
        batch = to_batch(rows, self.stats.decode)
        self._store.write_batch(self.name, batch, entries[-1][0])
        self._window.remember(keys)
        stats = self.stats
        stats.batches += 1
        stats.records += len(entries)
        stats.duplicates += len(decoded) - len(rows)
        stats.write_seconds += time.perf_counter() - started

    async def _maybe_truncate(self) -> None:
        now = time.monotonic()
        if self.truncate_log and now - self._last_truncate >= _TRUNCATE_EVERY:
            self._last_truncate = now
            await self._log.truncate_before(self._stored + 1)
