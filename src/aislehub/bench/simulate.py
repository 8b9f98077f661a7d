"""``aislehub bench simulate``: how many simulated devices one core drives at 1 msg/10 s.

A local server runs in its own process (plain MQTT, so the figure is the simulator's,
not TLS's); this process — one event loop, one core — runs ``devices`` simulated coolers
(the connected-cooler profile's physics, no faults, registered beforehand so DPS is not
in the timed part) sending every 10 s. After all are connected it measures a window:
messages acknowledged per second against the target and the CPU this process used. The
one-core capacity is ``devices × achieved share ÷ CPU share`` (physics + MQTT client
work scale linearly with devices). Bounded: setup, then ``seconds`` of measurement.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from aislehub.bench.server import BenchServer, pick_loopback
from aislehub.simulator.device import SimClock
from aislehub.simulator.fleet import FleetConfig, FleetSpec, FleetStatus, run_fleet
from aislehub.simulator.profile import load_profile, plan_devices
from aislehub.templates import load

INTERVAL_S = 10.0


def run_simulate_bench(devices: int, seconds: float) -> dict[str, Any]:
    profile = load_profile(load("connected-cooler").simulator)
    names = [p.device_id for p in plan_devices(profile, devices)]
    with tempfile.TemporaryDirectory(prefix="aislehub-bench-sim-") as tmp:
        server = BenchServer.create(Path(tmp) / "install", pick_loopback(7))
        server.add_devices(names)
        server.start()
        try:
            return asyncio.run(_measure(server, profile, devices, seconds))
        finally:
            server.stop()


async def _measure(
    server: BenchServer, profile: Any, devices: int, seconds: float
) -> dict[str, Any]:
    spec = FleetSpec.build(profile, devices, clock=SimClock(), interval_s=INTERVAL_S, faults=False)
    config = FleetConfig(
        server.host,
        server.plain_port,
        server.install.id_scope,
        server.group_key(),
        None,
        provision=False,
    )
    stop, status = asyncio.Event(), FleetStatus()
    setup_started = time.monotonic()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(run_fleet(config, [spec], stop, status), name="bench fleet")
        deadline = setup_started + 60 + devices * 0.02
        while status.connected + status.failed < devices and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        setup_s = time.monotonic() - setup_started
        await asyncio.sleep(INTERVAL_S)  # let the first round (and twin exchanges) pass
        sent0, cpu0, t0 = status.messages_sent, time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        sent1, cpu1, t1 = status.messages_sent, time.process_time(), time.monotonic()
        connected = status.connected
        stop.set()
    wall = t1 - t0
    achieved = (sent1 - sent0) / wall
    target = (connected or devices) / INTERVAL_S
    cpu = (cpu1 - cpu0) / wall
    share = min(1.0, achieved / target) if target else 0.0
    return {
        "benchmark": "simulate",
        "devices": devices,
        "connected": connected,
        "failed": status.failed,
        "setup_s": round(setup_s, 1),
        "target_msg_per_s": round(target, 1),
        "achieved_msg_per_s": round(achieved, 1),
        "simulator_cpu": round(cpu, 3),
        "one_core_capacity_devices": int(devices * share / cpu) if cpu > 0 else None,
        "window_s": round(wall, 1),
    }


def render_simulate_table(f: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"simulated coolers at 1 msg/{INTERVAL_S:g} s against a local server (plain MQTT)",
            f"  devices {f['devices']} (connected {f['connected']}, failed {f['failed']}),"
            f" setup {f['setup_s']} s",
            f"  messages/s {f['achieved_msg_per_s']} of {f['target_msg_per_s']} target,"
            f" simulator CPU {f['simulator_cpu'] * 100:.0f} % of one core",
            f"  one core sustains ≈ {f['one_core_capacity_devices']} devices",
        ]
    )
