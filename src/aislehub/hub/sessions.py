"""MQTT session state that outlives a connection (clean_session=0) [MQTT-3.1.2-4].

What survives: QoS 1 messages sent to the device but not yet acknowledged (with what to do
when they are), and the subscriptions. The IoT Hub SDK always connects with
clean_session=0, so a reconnect resends what was in flight with DUP=1 [MQTT-4.4.0-1].
Sessions live in this process's memory; after a restart, C2D messages still pending in the
metadata store are delivered again, which keeps C2D at-least-once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aislehub.hub.links import Key, OnAck
from aislehub.protocol.mqtt import Publish


@dataclass(slots=True)
class SavedSession:
    inflight: list[Publish] = field(default_factory=list)
    on_ack: dict[int, OnAck] = field(default_factory=dict)
    subscriptions: set[str] = field(default_factory=set)


class SessionStore:
    def __init__(self) -> None:
        self._sessions: dict[Key, SavedSession] = {}

    def save(self, key: Key, session: SavedSession) -> None:
        self._sessions[key] = session

    def take(self, key: Key, clean_session: bool) -> SavedSession | None:
        """The saved session to resume, or None; a clean start discards it [MQTT-3.1.2-6]."""
        saved = self._sessions.pop(key, None)
        return None if clean_session else saved

    def __len__(self) -> int:
        return len(self._sessions)
