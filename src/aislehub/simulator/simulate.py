"""``aislehub simulate``: a template's simulated fleet against a running server.

The devices provision through the server's DPS endpoint with the default enrollment
group's key (read from the install in ``--data-dir``), announce the template's model id,
and send telemetry until Ctrl-C or ``--duration``; a rich live table shows devices
provisioned, online and failed, messages sent and the rate. ``--speed`` compresses the
simulated clock (physics and fault schedule), ``--seed`` fixes every random draw.

Like ``aislehub demo``, it first publishes the application templates the app lacks (so the
devices are assigned theirs by model id, and the template's rules and dashboards apply)
and, as each device provisions, records what an operator would: the device is simulated,
and its cloud properties (a cooler's outlet and its location …) are set. Both go to the
install's metadata store directly, as the other CLI commands on an install do.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from aislehub.install import Install
from aislehub.settings import load_settings
from aislehub.simulator.demo import dial_address, import_templates, operator, read_group_key
from aislehub.simulator.device import SimClock
from aislehub.simulator.fleet import (
    FleetConfig,
    FleetSpec,
    FleetStatus,
    OnProvisioned,
    run_fleet,
)
from aislehub.simulator.profile import load_profile
from aislehub.simulator.transport import device_ssl_context
from aislehub.store.metadata import MetadataStore
from aislehub.templates import load


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    template: str
    count: int | None = None
    rate: float | None = None  # messages per second per device
    speed: float = 1.0
    seed: int = 0
    duration_s: float | None = None
    faults: bool = True
    host: str | None = None  # dialled instead of the install's host name


def run_simulate(data_dir: Path, opts: SimulateOptions) -> int:
    config, spec = _setup(data_dir, opts)
    install, settings = Install.load(data_dir), load_settings(data_dir)
    import_templates(settings, install)
    store = MetadataStore(settings.metadata_url)
    try:
        return asyncio.run(_simulate(config, spec, opts, operator(store, install.app_id)))
    finally:
        store.close()


def _setup(data_dir: Path, opts: SimulateOptions) -> tuple[FleetConfig, FleetSpec]:
    install = Install.load(data_dir)
    settings = load_settings(data_dir)
    profile = load_profile(load(opts.template).simulator)
    interval = 1.0 / opts.rate if opts.rate else None
    clock = SimClock(speed=opts.speed)
    spec = FleetSpec.build(
        profile, opts.count, seed=opts.seed, clock=clock, interval_s=interval, faults=opts.faults
    )
    ca = Path(install.ca_cert_path).read_text()
    config = FleetConfig(
        install.hostname,
        settings.mqtt_port,
        install.id_scope,
        read_group_key(data_dir, install),
        device_ssl_context(ca),
        address=opts.host or dial_address(settings.bind),
        seed=opts.seed,
    )
    return config, spec


async def _simulate(
    config: FleetConfig,
    spec: FleetSpec,
    opts: SimulateOptions,
    on_provisioned: OnProvisioned | None = None,
) -> int:
    stop, status = asyncio.Event(), FleetStatus()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with asyncio.TaskGroup() as tg:
        fleet = run_fleet(config, [spec], stop, status, on_provisioned)
        tg.create_task(fleet, name="simulated fleet")
        tg.create_task(_progress(status, len(spec.plans), opts, stop), name="progress")
    return 0 if status.failed == 0 else 1


async def _progress(
    status: FleetStatus, count: int, opts: SimulateOptions, stop: asyncio.Event
) -> None:
    started, last = time.monotonic(), (time.monotonic(), 0)
    with Live(
        _table(status, count, opts, 0.0), console=Console(stderr=True), refresh_per_second=2
    ) as live:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await stop.wait()
            now, sent = time.monotonic(), status.messages_sent
            rate = (sent - last[1]) / max(now - last[0], 1e-3)
            last = (now, sent)
            live.update(_table(status, count, opts, rate))
            if opts.duration_s is not None and now - started >= opts.duration_s:
                stop.set()


def _table(status: FleetStatus, count: int, opts: SimulateOptions, rate: float) -> Table:
    table = Table(title=f"aislehub simulate: {opts.template} (speed ×{opts.speed:g})")
    for column in ("devices", "provisioned", "online", "failed", "messages", "msg/s"):
        table.add_column(column, justify="right")
    table.add_row(
        str(count),
        str(status.provisioned),
        str(status.connected),
        str(status.failed),
        str(status.messages_sent),
        f"{rate:.1f}",
    )
    return table
