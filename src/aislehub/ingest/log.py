"""The ingest log: what the gateway appends to and what consumers read from.

Offsets are dense integers starting at 0 and assigned in append order. A record is
*durable* once its append future has resolved (for the local log: after fsync); only
durable records are ever returned by :meth:`IngestLog.read`, so a consumer never sees a
record that a crash could take back.

Implementations: :class:`aislehub.ingest.local_log.LocalLog` (embedded, one process) and,
later, a NATS JetStream log (scale-out). Both are owned by the process that starts them:
``await log.start()`` before use and ``await log.close()`` after.

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
    ) -> list[tuple[int, bytes]]:
        """Durable records with offset > ``after``, oldest first, at most ``max_records``.

        Waits up to ``timeout`` seconds when there is none yet; returns ``[]`` then.
        """
        ...

    async def truncate_before(self, offset: int) -> None:
        """Allow the log to drop records below ``offset`` (retention is best effort)."""
        ...

    async def start(self) -> None:
        """Open the log (recover files, connect); before any other call."""
        ...

    async def close(self) -> None:
        """Settle what is queued, then release the log; appends fail afterwards."""
        ...
