"""Outbound QoS 1 messages awaiting PUBACK, and the packet identifiers they hold.

An identifier is in use from the moment its PUBLISH is sent until its PUBACK arrives
[MQTT-2.3.1-2]; across a clean_session=0 reconnect the messages keep their identifiers and
are sent again in their original order [MQTT-4.4.0-1] [MQTT-4.6.0-1].
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .packets import Publish

__all__ = ["Inflight"]

_MAX_PACKET_ID = 0xFFFF


class Inflight:
    def __init__(self) -> None:
        self._by_id: dict[int, Publish] = {}  # insertion order is send order
        self._next_id = 1

    def __len__(self) -> int:
        return len(self._by_id)

    def messages(self) -> list[Publish]:
        return list(self._by_id.values())

    def add(self, topic: str, payload: bytes, retain: bool) -> Publish:
        """Track a new message under the next free identifier."""
        packet_id = self._allocate()
        publish = Publish(topic, payload, 1, retain, False, packet_id)
        self._by_id[packet_id] = publish
        return publish

    def settle(self, packet_id: int) -> Publish | None:
        """The message a PUBACK settles, or None for an identifier not in flight."""
        return self._by_id.pop(packet_id, None)

    def restore(self, publishes: Iterable[Publish]) -> list[Publish]:
        """Take back a previous connection's messages, marked DUP, under their own ids."""
        batch: list[tuple[int, Publish]] = []
        for publish in publishes:
            if publish.qos != 1 or publish.packet_id is None:
                raise ValueError(f"resend() takes QoS 1 messages, not {publish!r}")
            batch.append((publish.packet_id, replace(publish, dup=True)))
        ids = {packet_id for packet_id, _ in batch}
        if len(ids) != len(batch) or not ids.isdisjoint(self._by_id):
            raise ValueError("resend() ids must be distinct and not already in flight")
        self._by_id.update(batch)
        return [publish for _, publish in batch]

    def _allocate(self) -> int:
        """The next free identifier after the last one handed out, wrapping 65535 -> 1."""
        if len(self._by_id) >= _MAX_PACKET_ID:
            raise RuntimeError("all 65535 packet identifiers are in flight")
        packet_id = self._next_id
        while packet_id in self._by_id:
            packet_id = packet_id % _MAX_PACKET_ID + 1
        self._next_id = packet_id % _MAX_PACKET_ID + 1
        return packet_id
