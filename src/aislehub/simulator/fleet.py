"""Fleets of simulated devices from simulator profiles, each device a real gateway client.

Each device derives its key from the group enrollment key (contract §3.1), registers
through DPS announcing its template's model id (so the server assigns the template), then
connects to the hub it was assigned and runs its model until ``stop`` is set. Every
device is a named task in one TaskGroup. With ``provision=False`` (benchmarks, devices
registered beforehand) the DPS step is skipped.

Error handling: transient failures while provisioning (server not up yet, busy, socket or
TLS errors) are retried with back-off; a permanent one (refused credentials, DPS
``failed``) is logged and ends that device only, counted in :class:`FleetStatus`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from aislehub.protocol.sas import derive_device_key
from aislehub.simulator.client import backoff_delay
from aislehub.simulator.device import SimClock, SimulatedDevice
from aislehub.simulator.errors import (
    ConnectionLost,
    ConnectRefused,
    ProvisioningFailed,
    RequestFailed,
)
from aislehub.simulator.physics import build_model
from aislehub.simulator.profile import (
    DevicePlan,
    FaultRecord,
    Profile,
    plan_devices,
    schedule_faults,
)
from aislehub.simulator.provision import provision
from aislehub.simulator.transport import Endpoint

log = logging.getLogger(__name__)

# TLS handshakes cost the server CPU; 16 at once keeps a 1,000-device start smooth.
MAX_CONCURRENT_PROVISIONING = 16

OnProvisioned = Callable[[str, SimulatedDevice], Awaitable[None]]


@dataclass(slots=True)
class FleetStatus:
    """Live counters and the running devices, for progress output and tests."""

    provisioned: int = 0
    connected: int = 0
    failed: int = 0
    devices: dict[str, SimulatedDevice] = field(default_factory=dict)

    @property
    def messages_sent(self) -> int:
        return sum(d.messages_sent for d in self.devices.values())


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """Where the devices connect, and how they are provisioned."""

    host: str  # the provisioning host (and the hub's, when provision is False)
    port: int
    id_scope: str
    group_key: str
    ssl_ctx: ssl.SSLContext | None
    address: str | None = None  # dialled instead of the host names, when given
    provision: bool = True
    seed: int = 0


@dataclass(frozen=True, slots=True)
class FleetSpec:
    """One template's devices: the profile, the plans, the ground-truth faults, the clock."""

    profile: Profile
    plans: tuple[DevicePlan, ...]
    faults: tuple[FaultRecord, ...]
    clock: SimClock
    interval_s: float

    @classmethod
    def build(
        cls,
        profile: Profile,
        count: int | None = None,
        *,
        seed: int = 0,
        clock: SimClock | None = None,
        interval_s: float | None = None,
        faults: bool = True,
    ) -> FleetSpec:
        clock = clock or SimClock()
        plans = tuple(plan_devices(profile, count, seed))
        records = tuple(schedule_faults(profile, plans, clock.start, seed)) if faults else ()
        return cls(profile, plans, records, clock, interval_s or profile.interval_s)


async def run_fleet(
    config: FleetConfig,
    specs: Sequence[FleetSpec],
    stop: asyncio.Event,
    status: FleetStatus | None = None,
    on_provisioned: OnProvisioned | None = None,
) -> FleetStatus:
    """Run every device of ``specs`` until ``stop`` is set."""
    status = status if status is not None else FleetStatus()
    gate = asyncio.Semaphore(MAX_CONCURRENT_PROVISIONING)
    async with asyncio.TaskGroup() as tg:
        for spec in specs:
            for plan in spec.plans:
                device = _run_device(config, spec, plan, gate, status, stop, on_provisioned)
                name = plan.device_id
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
    spec: FleetSpec,
    plan: DevicePlan,
    gate: asyncio.Semaphore,
    status: FleetStatus,
    stop: asyncio.Event,
    on_provisioned: OnProvisioned | None,
) -> None:
    name, seed = plan.device_id, config.seed + plan.seed
    key = derive_device_key(config.group_key, name)
    if config.provision:
        async with gate:
            assignment = await _provision_with_retry(config, spec.profile.model_id, name, key, seed)
    else:
        assignment = (config.host, name)
    if assignment is None:
        status.failed += 1
        return
    hub, device_id = assignment
    status.provisioned += 1
    model = build_model(spec.profile.model, spec.profile.physics, plan, spec.faults, spec.clock())
    sim = SimulatedDevice(model, spec.clock, spec.profile.model_id)
    status.devices[device_id] = sim
    if on_provisioned is not None:
        await on_provisioned(device_id, sim)
    endpoint = Endpoint(hub, config.port, config.ssl_ctx, config.address)
    phase = random.Random(seed).uniform(0, spec.interval_s)
    try:
        async with sim.client(endpoint, device_id, key, seed=seed) as client:
            status.connected += 1
            try:
                await sim.run(client, spec.interval_s, stop, phase)
            finally:
                status.connected -= 1
    except* ConnectRefused as group:  # 4/5: the hub refuses the derived key; others go on
        log.error("%s: hub refused the device: %s", device_id, group.exceptions[0])
        status.failed += 1


async def _provision_with_retry(
    config: FleetConfig, model_id: str, name: str, key: str, seed: int
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
                model_id,
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
