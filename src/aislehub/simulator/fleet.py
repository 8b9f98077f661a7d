"""A fleet of simulated coolers, each provisioned through DPS and run concurrently.

Devices are named ``cooler-001``, ``cooler-002``, …; each derives its key from the group
enrollment key (contract §3.1), registers, connects to the hub it was assigned and sends
telemetry until ``stop`` is set. Every device is a named task in one TaskGroup.

Error handling: transient failures while provisioning (server not up yet, busy, socket or
TLS errors) are retried with back-off; a permanent one (refused credentials, DPS
``failed``) is logged and ends that device only, counted in :class:`FleetStatus`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aislehub.install import Install
from aislehub.protocol.sas import derive_device_key
from aislehub.simulator.client import backoff_delay
from aislehub.simulator.cooler import OUTLETS, Cooler, CoolerProfile
from aislehub.simulator.device import SimulatedCooler
from aislehub.simulator.errors import (
    ConnectionLost,
    ConnectRefused,
    ProvisioningFailed,
    RequestFailed,
)
from aislehub.simulator.provision import provision
from aislehub.simulator.transport import Endpoint

log = logging.getLogger(__name__)

# TLS handshakes cost the server CPU; 16 at once keeps a 1,000-device start smooth.
MAX_CONCURRENT_PROVISIONING = 16


@dataclass(slots=True)
class FleetStatus:
    """Live counters and the running devices, for progress output and tests."""

    provisioned: int = 0
    connected: int = 0
    failed: int = 0
    devices: dict[str, SimulatedCooler] = field(default_factory=dict)

    @property
    def messages_sent(self) -> int:
        return sum(d.messages_sent for d in self.devices.values())


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """What every device of the fleet shares."""

    host: str
    port: int
    id_scope: str
    group_key: str
    ssl_ctx: ssl.SSLContext | None
    interval_s: float
    address: str | None = None
    profile: CoolerProfile = field(default_factory=CoolerProfile)
    seed: int = 0


def device_names(count: int) -> list[str]:
    return [f"cooler-{i:03d}" for i in range(1, count + 1)]


async def run_fleet(
    host: str,
    port: int,
    install: Install,
    group_key: str,
    count: int,
    interval_s: float,
    ssl_ctx: ssl.SSLContext | None,
    stop: asyncio.Event,
    *,
    address: str | None = None,
    seed: int = 0,
    status: FleetStatus | None = None,
) -> FleetStatus:
    """Run ``count`` coolers until ``stop`` is set; ``host`` is the provisioning host."""
    config = FleetConfig(
        host, port, install.id_scope, group_key, ssl_ctx, interval_s, address=address, seed=seed
    )
    status = status if status is not None else FleetStatus()
    gate = asyncio.Semaphore(MAX_CONCURRENT_PROVISIONING)
    async with asyncio.TaskGroup() as tg:
        for index, name in enumerate(device_names(count)):
            device = _run_device(config, index, name, gate, status, stop)
            tg.create_task(run_until(stop, device, name), name=f"simulated {name}")
    return status


async def run_until(stop: asyncio.Event, coro: Coroutine[Any, Any, None], name: str) -> None:
    """Run ``coro`` until it returns or ``stop`` is set, whichever comes first."""
    async with asyncio.TaskGroup() as tg:
        work = tg.create_task(coro, name=name)
        watcher = tg.create_task(stop.wait(), name=f"{name} stop watcher")
        work.add_done_callback(lambda _: watcher.cancel())
        watcher.add_done_callback(lambda w: None if w.cancelled() else work.cancel())


async def _run_device(
    config: FleetConfig,
    index: int,
    name: str,
    gate: asyncio.Semaphore,
    status: FleetStatus,
    stop: asyncio.Event,
) -> None:
    key = derive_device_key(config.group_key, name)
    async with gate:
        assignment = await _provision_with_retry(config, name, key, config.seed + index)
    if assignment is None:
        status.failed += 1
        return
    hub, device_id = assignment
    status.provisioned += 1
    outlet = OUTLETS[index % len(OUTLETS)]
    sim = SimulatedCooler(
        Cooler(config.profile, outlet, seed=config.seed + index, start=time.monotonic())
    )
    status.devices[device_id] = sim
    endpoint = Endpoint(hub, config.port, config.ssl_ctx, config.address)
    phase = random.Random(config.seed + index).uniform(0, config.interval_s)
    try:
        async with sim.client(endpoint, device_id, key, seed=config.seed + index) as client:
            status.connected += 1
            try:
                await sim.run(client, config.interval_s, stop, phase)
            finally:
                status.connected -= 1
    except* ConnectRefused as group:  # 4/5: the hub refuses the derived key; others go on
        log.error("%s: hub refused the device: %s", device_id, group.exceptions[0])
        status.failed += 1


async def _provision_with_retry(
    config: FleetConfig, name: str, key: str, seed: int
) -> tuple[str, str] | None:
    """Provision, retrying transient failures; None after a permanent refusal."""
    rng, attempt = random.Random(seed), 0
    while True:
        try:
            return await provision(
                config.host,
                config.port,
                config.id_scope,
                name,
                key,
                config.ssl_ctx,
                config.profile.model_id,
                address=config.address,
            )
        except (ProvisioningFailed, RequestFailed, ConnectRefused) as exc:
            if not (isinstance(exc, ConnectRefused) and exc.transient):
                log.error("%s: provisioning refused: %s", name, exc)
                return None
            log.info("%s: DPS busy, retrying: %s", name, exc)
        except (ConnectionLost, OSError) as exc:
            log.info("%s: provisioning failed, retrying: %s", name, exc)
        await asyncio.sleep(backoff_delay(attempt, rng))
        attempt += 1
