"""Which connection holds which device, right now.

A ``DeviceLink`` is the hub's view of one live device connection: it can publish to the
device and be closed. The gateway registers a link after CONNACK and removes it on close.
Per [MQTT-3.1.4-2] a second connection with the same client id takes over: the old one is
closed. Device-bound traffic always goes to the *current* link, whether or not the device
re-subscribed, because the IoT Hub SDK never re-subscribes after a reconnect.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

OnAck = Callable[[], None]


class DeviceLink(Protocol):
    def publish(
        self, topic: str, payload: bytes, qos: int = 1, on_ack: OnAck | None = None
    ) -> None:
        """Queue a PUBLISH to the device; ``on_ack`` runs when a QoS 1 delivery is PUBACKed."""

    def close(self, reason: str) -> None:
        """Drop the connection (the device will reconnect)."""

    def last_activity(self) -> float:
        """Wall-clock time (epoch seconds) of the last packet the device sent."""
        ...


Key = tuple[str, str, str]  # (app_id, device_id, module_id or "")


class LinkRegistry:
    def __init__(self) -> None:
        self._links: dict[Key, DeviceLink] = {}
        self._since: dict[Key, float] = {}  # epoch seconds each current link attached
        self._waiters: dict[Key, list[asyncio.Event]] = {}

    def attach(self, key: Key, link: DeviceLink) -> None:
        old = self._links.get(key)
        self._links[key] = link
        self._since[key] = time.time()
        if old is not None and old is not link:
            old.close("session taken over by a new connection with the same client id")
        for event in self._waiters.pop(key, []):
            event.set()

    def detach(self, key: Key, link: DeviceLink) -> None:
        if self._links.get(key) is link:
            del self._links[key]
            self._since.pop(key, None)

    def get(self, key: Key) -> DeviceLink | None:
        return self._links.get(key)

    def attached_since(self, key: Key) -> float | None:
        """When the current link of ``key`` attached (epoch seconds), if there is one."""
        return self._since.get(key)

    def is_connected(self, key: Key) -> bool:
        return key in self._links

    def count(self) -> int:
        return len(self._links)

    def for_device(self, app_id: str, device_id: str) -> list[DeviceLink]:
        """The device's own link and those of its modules."""
        return [link for k, link in self._links.items() if k[0] == app_id and k[1] == device_id]

    def attached(self) -> list[Key]:
        return list(self._links)

    def connected_devices(self, app_id: str) -> set[str]:
        return {k[1] for k in self._links if k[0] == app_id}

    async def wait_for(self, key: Key, timeout: float) -> DeviceLink | None:  # noqa: ASYNC109
        """The device's link, waiting up to ``timeout`` s for it to connect."""
        link = self._links.get(key)
        if link is not None or timeout <= 0:
            return link
        event = asyncio.Event()
        self._waiters.setdefault(key, []).append(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return None
        finally:
            waiters = self._waiters.get(key, [])
            if event in waiters:
                waiters.remove(event)
        return self._links.get(key)

    def close_all(self, reason: str) -> None:
        for link in list(self._links.values()):
            link.close(reason)
        self._links.clear()
        self._since.clear()
