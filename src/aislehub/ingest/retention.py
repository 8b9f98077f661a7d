"""Log retention with several consumers: drop only what every consumer has finished with.

The store writer truncates the log itself when it is the only consumer. With the rules
engine beside it, the runtime builds the writer with ``truncate_log=False`` and runs
:class:`LogRetention` over both: every ``interval`` seconds it truncates below the
smallest committed offset of its consumers (plus one), so a restart of either resumes
from records the log still holds.

The log adds its own floor: it never drops what a named reader it knows has not
acknowledged (on JetStream: any durable consumer of the stream, whichever process reads
through it), so a reader outside this process holds the log too. JetStream's interest
retention is not used: it would drop records published before a reader's first read, and
records a reader acknowledged but must read again (docs/operations-scale-out.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from aislehub.ingest.log import IngestLog

__all__ = ["LogRetention"]


class LogRetention:
    def __init__(
        self, log: IngestLog, consumers: Sequence[Callable[[], int]], interval: float = 10.0
    ) -> None:
        self._log = log
        self._consumers = list(consumers)  # each: the consumer's last committed offset
        self.interval = interval
        self.truncated_before = 0

    def safe_offset(self) -> int:
        """The lowest offset some consumer still needs."""
        return min(committed() for committed in self._consumers) + 1

    async def truncate(self) -> None:
        below = self.safe_offset()
        if below > self.truncated_before:
            await self._log.truncate_before(below)
            self.truncated_before = below

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.truncate()
