"""A device model wired to a DeviceClient: telemetry loop, commands, writable properties.

After connecting it reports its read-only properties, reads the twin and acknowledges
writable properties set while it was offline (as IoT Plug and Play devices must), then
sends its telemetry (one message per reporting component) every interval, plus the event
messages the model produced meanwhile (door changes, displays arriving …). While a
``gatewayOffline`` fault is active it keeps simulating but sends nothing.

Time: the model's clock is a :class:`SimClock`, simulated epoch seconds that may run
faster than the wall clock (``speed``), so a test or a demo can compress hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aislehub.simulator.client import DeviceClient
from aislehub.simulator.errors import RequestFailed
from aislehub.simulator.handlers import Handlers
from aislehub.simulator.physics import DeviceModel
from aislehub.simulator.transport import Endpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SimClock:
    """Simulated epoch seconds: ``start`` at creation, running ``speed`` times wall time."""

    start: float = field(default_factory=time.time)
    speed: float = 1.0
    _origin: float = field(default_factory=time.monotonic)

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self._origin) * self.speed


class SimulatedDevice:
    """Binds one device model to the device's hub connection."""

    def __init__(self, model: DeviceModel, clock: SimClock, model_id: str | None = None) -> None:
        self.model = model
        self.clock = clock
        self.model_id = model_id
        self.messages_sent = 0
        self._client: DeviceClient | None = None

    def handlers(self) -> Handlers:
        return Handlers(method=self.on_method, desired=self.on_desired)

    def client(self, endpoint: Endpoint, device_id: str, key: str, seed: int) -> DeviceClient:
        """A client for this device (handlers wired), to use with ``async with``."""
        self._client = DeviceClient(
            endpoint, device_id, key, model_id=self.model_id, handlers=self.handlers(), seed=seed
        )
        return self._client

    async def on_method(self, name: str, payload: Any) -> tuple[int, Any]:
        self.model.advance(self.clock())
        return self.model.command(name, payload)

    async def on_desired(self, patch: dict[str, Any]) -> None:
        """Apply writable properties and report the acknowledgements (contract §2.5)."""
        acks = self.model.apply_desired(patch)
        if acks and self._client is not None:
            await self._client.patch_reported(acks)

    async def run(
        self, client: DeviceClient, interval_s: float, stop: asyncio.Event, phase_s: float = 0.0
    ) -> None:
        """Report, catch up on desired properties, then send telemetry every ``interval_s``
        wall seconds (first after ``phase_s``, so a fleet does not send in lock-step)."""
        await self._report_startup(client)
        await wait_or_stop(stop, phase_s)
        while not stop.is_set():
            await self.tick(client)
            await wait_or_stop(stop, interval_s)

    async def tick(self, client: DeviceClient) -> None:
        events = self.model.advance(self.clock())
        if getattr(self.model, "offline", False):
            return
        for component, payload in (*events, *self.model.telemetry()):
            await client.send_telemetry(payload, component=component)
            self.messages_sent += 1

    async def _report_startup(self, client: DeviceClient) -> None:
        try:
            await client.patch_reported(self.model.reported())
            await self._catch_up(client)
        except (RequestFailed, TimeoutError) as exc:  # telemetry matters more: carry on
            log.warning("%s: startup twin exchange failed: %s", client.device_id, exc)

    async def _catch_up(self, client: DeviceClient) -> None:
        twin = await client.get_twin()
        desired = twin.get("desired") or {}
        reported = twin.get("reported") or {}
        version = desired.get("$version")
        pending = {
            name: value
            for name, value in desired.items()
            if not name.startswith("$") and _acked_version(reported.get(name)) != version
        }
        if pending:
            await self.on_desired({**pending, "$version": version})


def _acked_version(ack: Any) -> Any:
    return ack.get("av") if isinstance(ack, dict) else None


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
