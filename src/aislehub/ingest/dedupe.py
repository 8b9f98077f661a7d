"""Drop device re-sends: the same ``$.mid`` from the same device seen twice.

A device that publishes at QoS 1 and loses our PUBACK (connection dropped after the
append) re-sends the message with DUP set after it reconnects [MQTT-4.3.2], and the
gateway appends it again under a new offset. The log cannot know; the store writer can,
when the device sets a message id.

The window is two generations of keys: lookups check both, inserts go to the newer one,
and when it holds ``capacity`` keys the older one is dropped. So the last
``capacity`` to ``2 * capacity`` message ids are remembered, at O(1) per message and about
200 bytes per key (≈ 40 MB at the default 100,000).

Limit: a re-send that arrives after more than ``capacity`` other messages with ids is
stored twice. At 1,000 msg/s the default covers 100 to 200 s, far longer than an SDK's
reconnect back-off; at 50,000 msg/s it covers 2 to 4 s. Messages without ``$.mid`` are never
deduplicated. A restarted writer seeds the window from the store's newest message ids,
so the limit does not reset on restart.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

from aislehub.ingest.columns import Row

__all__ = ["DedupeWindow", "MessageKey"]

MessageKey = tuple[str, str, str]  # (app, device, $.mid)


class DedupeWindow:
    """Recently stored message keys, bounded to ``2 * capacity``."""

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._new: set[MessageKey] = set()
        self._old: set[MessageKey] = set()

    def __contains__(self, key: MessageKey) -> bool:
        return key in self._new or key in self._old

    def __len__(self) -> int:
        return len(self._new) + len(self._old)

    def filter(
        self, rows: Sequence[Row], seen: set[MessageKey] | None = None
    ) -> tuple[list[Row], set[MessageKey]]:
        """Rows that are not re-sends, and the keys to :meth:`remember` once they are stored.

        The window itself is not changed here: if storing the batch fails, the same rows
        must pass again on the retry. ``seen``: keys taken earlier in the same batch (a
        batch filtered in parts); it is updated and returned.
        """
        fresh: list[Row] = []
        batch: set[MessageKey] = set() if seen is None else seen
        intern = sys.intern  # app and device ids repeat: share one string per id
        new, old = self._new, self._old
        for row in rows:
            mid = row[7]  # Row: (offset, app, device, module, ts, props, payload, mid, sub)
            if mid is None:
                fresh.append(row)
                continue
            key = (intern(row[1]), intern(row[2]), mid)
            if key not in batch and key not in new and key not in old:
                batch.add(key)
                fresh.append(row)
        return fresh, batch

    def remember(self, keys: Iterable[MessageKey]) -> None:
        for key in keys:
            self._new.add(key)
            if len(self._new) >= self.capacity:
                self._old, self._new = self._new, set()
