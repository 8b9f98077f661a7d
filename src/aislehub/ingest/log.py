"""The ingest log: what the gateway appends to and what consumers read from.

Offsets are increasing integers from 0, assigned in append order (per tenant: a log may
file one turn's records tenant by tenant). The local log's are dense; JetStream's are not
(:mod:`aislehub.ingest.batches`), so count what lies between two offsets with
:meth:`IngestLog.backlog`, never by subtracting them. A record is
*durable* once its append future has resolved (for the local log: after fsync); only
durable records are ever returned by :meth:`IngestLog.read`, so a consumer never sees a
record that a crash could take back.

Implementations: :class:`aislehub.ingest.local_log.LocalLog` (embedded, one process) and
:class:`aislehub.ingest.nats_log.NatsLog` (NATS JetStream, scale-out). Both are owned by
the process that starts them: ``await log.start()`` before use and ``await log.close()``
after.

Named readers: a consumer that keeps its own committed offset (the store writer in the
telemetry store, the rules engine in its checkpoint) reads with ``consumer=<its name>``
and calls :meth:`IngestLog.acknowledge` once it has committed. The log then knows each
reader's position (JetStream: a durable consumer of that name, visible to ``nats consumer
info``) and retention never drops what a reader has not acknowledged. The reader's own
offset stays authoritative: ``read(after, ...)`` always continues after ``after``, and a
log whose acknowledged position disagrees (an ack lost in a crash, or an ack whose commit
did not happen) repositions the reader there. Reading is at-least-once; exactly-once in
the store comes from the store refusing a replayed offset.

Errors::

    AislehubError
    └── IngestLogError           the log cannot serve the request
        ├── IngestLogFailed      a write or fsync failed: nothing more is acknowledged
        │                        until the process restarts and the log recovers
        ├── IngestLogClosed      append after close()
        └── OffsetTruncated      read below the oldest retained offset
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from aislehub.errors import AislehubError

__all__ = [
    "IngestLog",
    "IngestLogClosed",
    "IngestLogError",
    "IngestLogFailed",
    "OffsetTruncated",
]


class IngestLogError(AislehubError):
    """The ingest log cannot serve the request."""


class IngestLogFailed(IngestLogError):
    """A write or fsync failed; the log acknowledges nothing until it is reopened.

    We do not retry a failed fsync: Linux may have dropped the dirty pages and marked
    them clean, so a later fsync can succeed without the data ever reaching the disk
    (the 2018 "fsyncgate" finding behind PostgreSQL's panic-on-fsync-failure).
    """


class IngestLogClosed(IngestLogError):
    """The log was closed; append no more."""


class OffsetTruncated(IngestLogError):
    """The requested offset is older than what retention kept."""


class IngestLog(Protocol):
    """Durable, ordered log of encoded telemetry records."""

    @property
    def durable_offset(self) -> int:
        """The highest durable offset, or -1 while the log is empty."""
        ...

    def backlog(self, after: int) -> int:
        """How many durable records lie after offset ``after`` (an estimate where offsets
        are not dense): a reader's lag."""
        ...

    def append(self, record: bytes, subject: str | None = None) -> asyncio.Future[int]:
        """Queue ``record``; the future resolves to its offset once it is durable.

        ``subject`` names the record's tenant and device (:mod:`aislehub.ingest.subjects`)
        for a log that files records by it (JetStream); the local log keeps one sequence.

        Not a coroutine: the gateway calls it from ``Protocol.data_received`` and sends
        the PUBACK from a done-callback. The future fails with :class:`IngestLogFailed`
        if the record may not be durable.
        """
        ...

    # The timeout is a parameter, not asyncio.timeout() around the call, because it is
    # part of the backend request: a JetStream pull fetch waits server-side ("expires").
    async def read(
        self,
        after: int,
        max_records: int,
        timeout: float,  # noqa: ASYNC109
        *,
        consumer: str | None = None,
    ) -> list[tuple[int, bytes]]:
        """Durable records with offset > ``after``, oldest first, at most ``max_records``.

        Waits up to ``timeout`` seconds when there is none yet; returns ``[]`` then.

        ``consumer`` names the reader (any non-empty text). A named read that does
        not continue that reader's previous one (or its first read on this log object)
        positions the reader at ``after``, which also becomes its acknowledged offset
        unless the log already had it there. ``None``: an anonymous reader that the log
        does not track.
        """
        ...

    async def acknowledge(self, consumer: str, offset: int) -> None:
        """``consumer`` has committed everything up to ``offset``: the log may drop it.

        Call it after the commit, never before. Acknowledges at most what ``consumer``
        has read through this log object (the last batch end at or below ``offset``);
        nothing if it has not read here yet. Best effort: an acknowledgement that cannot
        be delivered (a broken connection) is logged, not raised, and the next one
        covers it, since the reader's committed offset is what it resumes from.
        """
        ...

    async def acknowledged(self, consumer: str) -> int | None:
        """The offset up to which ``consumer`` has acknowledged (or was positioned),
        ``None`` when the log knows no reader of that name."""
        ...

    async def truncate_before(self, offset: int) -> None:
        """Allow the log to drop records below ``offset`` (retention is best effort), but
        never one that a named reader known to the log has not acknowledged."""
        ...

    async def start(self) -> None:
        """Open the log (recover files, connect); before any other call."""
        ...

    async def close(self) -> None:
        """Settle what is queued, then release the log; appends fail afterwards."""
        ...
