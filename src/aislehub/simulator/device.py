"""A cooler model wired to a DeviceClient: telemetry loop, commands, writable properties.

After connecting it reports its read-only properties, reads the twin and acknowledges a
``targetTemperature`` set while it was offline (as IoT Plug and Play devices must), then
sends one telemetry message per interval plus a ``doorOpen`` event for every door change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aislehub.simulator.client import DeviceClient
from aislehub.simulator.cooler import Cooler
from aislehub.simulator.errors import RequestFailed
from aislehub.simulator.handlers import Handlers
from aislehub.simulator.transport import Endpoint

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class SimulatedCooler:
    """Binds one :class:`Cooler` to the device's hub connection."""

    def __init__(self, cooler: Cooler, clock: Clock = time.monotonic) -> None:
        self.cooler = cooler
        self.clock = clock
        self.messages_sent = 0
        self._client: DeviceClient | None = None

    def handlers(self) -> Handlers:
        return Handlers(method=self.on_method, desired=self.on_desired)

    def client(self, endpoint: Endpoint, device_id: str, key: str, seed: int) -> DeviceClient:
        """A client for this cooler (handlers wired), to use with ``async with``."""
        self._client = DeviceClient(
            endpoint,
            device_id,
            key,
            model_id=self.cooler.profile.model_id,
            handlers=self.handlers(),
            seed=seed,
        )
        return self._client

    async def on_method(self, name: str, payload: Any) -> tuple[int, Any]:
        self.cooler.advance(self.clock())
        return self.cooler.command(name, payload)

    async def on_desired(self, patch: dict[str, Any]) -> None:
        """Apply writable properties and report the acknowledgements (contract §2.5)."""
        acks = self.cooler.apply_desired(patch)
        if acks and self._client is not None:
            await self._client.patch_reported(acks)

    async def run(
        self, client: DeviceClient, interval_s: float, stop: asyncio.Event, phase_s: float = 0.0
    ) -> None:
        """Report, catch up on desired properties, then send telemetry every ``interval_s``
        (first after ``phase_s``, so a fleet does not send in lock-step) until ``stop``."""
        await self._report_startup(client)
        await _wait(stop, phase_s)
        while not stop.is_set():
            await self.tick(client)
            await _wait(stop, interval_s)

    async def tick(self, client: DeviceClient) -> None:
        for event in self.cooler.advance(self.clock()):
            await client.send_telemetry({"doorOpen": event.open})
            self.messages_sent += 1
        await client.send_telemetry(self.cooler.telemetry())
        self.messages_sent += 1

    async def _report_startup(self, client: DeviceClient) -> None:
        try:
            await client.patch_reported(self.cooler.reported())
            await self._catch_up(client)
        except (RequestFailed, TimeoutError) as exc:  # telemetry matters more: carry on
            log.warning("%s: startup twin exchange failed: %s", client.device_id, exc)

    async def _catch_up(self, client: DeviceClient) -> None:
        twin = await client.get_twin()
        desired = twin.get("desired") or {}
        ack = (twin.get("reported") or {}).get("targetTemperature")
        acked = ack.get("av") if isinstance(ack, dict) else None
        if "targetTemperature" in desired and acked != desired.get("$version"):
            await self.on_desired(desired)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
