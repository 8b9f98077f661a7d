"""Client-side QoS 1 bookkeeping: packet identifiers and publishes awaiting PUBACK.

A publish stays here from the moment it is queued until its PUBACK arrives, across
reconnects: each entry remembers the connection generation it was last written on, so a
new connection resends exactly the entries it has not carried yet (with DUP set,
[MQTT-3.3.1-1]), and the hub sees every message at least once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

MAX_PACKET_ID = 0xFFFF


class PacketIds:
    """Non-zero 16-bit identifiers, never two in use at once [MQTT-2.3.1-2]."""

    def __init__(self) -> None:
        self._next = 1
        self._used: set[int] = set()

    def allocate(self) -> int:
        if len(self._used) >= MAX_PACKET_ID:
            raise RuntimeError("all 65535 packet identifiers are in use")
        while self._next in self._used:
            self._advance()
        packet_id = self._next
        self._used.add(packet_id)
        self._advance()
        return packet_id

    def release(self, packet_id: int) -> None:
        self._used.discard(packet_id)

    def _advance(self) -> None:
        self._next = self._next % MAX_PACKET_ID + 1


@dataclass(slots=True, eq=False)
class Outgoing:
    """One QoS 1 PUBLISH. ``acked`` resolves with the ``closed`` future of the link that
    acknowledged it, so a request can tell "answered" from "that connection died"."""

    packet_id: int
    topic: str
    payload: bytes
    acked: asyncio.Future[asyncio.Future[None]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    sent_on: int = 0  # connection generation of the last write; 0 = never written

    @property
    def dup(self) -> bool:
        return self.sent_on != 0


class Outbox:
    """Publishes awaiting PUBACK, by packet identifier."""

    def __init__(self, ids: PacketIds) -> None:
        self._ids = ids
        self._entries: dict[int, Outgoing] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, topic: str, payload: bytes) -> Outgoing:
        entry = Outgoing(self._ids.allocate(), topic, payload)
        self._entries[entry.packet_id] = entry
        return entry

    def remove(self, entry: Outgoing) -> None:
        if self._entries.pop(entry.packet_id, None) is not None:
            self._ids.release(entry.packet_id)

    def ack(self, packet_id: int, link_closed: asyncio.Future[None]) -> None:
        entry = self._entries.get(packet_id)
        if entry is not None and not entry.acked.done():
            entry.acked.set_result(link_closed)

    def unsent(self, generation: int) -> list[Outgoing]:
        """Entries not yet written on connection ``generation``, oldest first."""
        return [e for e in self._entries.values() if e.sent_on != generation]
