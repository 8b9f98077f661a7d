"""Three simulated coolers against the real server, in-process: DPS, MQTT/TLS, the REST API.

The server runs on its own loopback address with ephemeral ports (8883 may be taken), so
the coolers dial the port explicitly: our client, unlike the SDK, can.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from aislehub.install import Install, initialize
from aislehub.runtime import running
from aislehub.settings import Settings, load_settings
from aislehub.simulator.demo import import_templates, read_group_key
from aislehub.simulator.fleet import FleetConfig, FleetSpec, FleetStatus, run_fleet
from aislehub.simulator.profile import load_profile
from aislehub.simulator.transport import device_ssl_context
from aislehub.templates import load

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

HOST = "127.0.0.77"
API_VERSION = "2022-07-31"


def free_port() -> int:
    with socket.create_server((HOST, 0)) as sock:
        return int(sock.getsockname()[1])


async def eventually(probe: Callable[[], Awaitable[Any]], within: float = 10.0) -> Any:
    """Poll the API until ``probe`` returns something truthy; return it."""
    async with asyncio.timeout(within):
        while True:
            if value := await probe():
                return value
            await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Setup:
    install: Install
    token: str
    group_key: str
    ssl_ctx: ssl.SSLContext
    settings: Settings


def make_install(tmp_path: Path) -> Setup:
    data_dir = tmp_path / "install"
    install, token = initialize(data_dir, [HOST], [])
    settings = load_settings(data_dir, env={}).with_overrides(
        bind=HOST, mqtt_port=free_port(), ws_port=0, http_port=free_port()
    )
    ssl_ctx = device_ssl_context(Path(install.ca_cert_path).read_text())
    return Setup(install, token, read_group_key(data_dir, install), ssl_ctx, settings)


@pytest.fixture
async def api_and_fleet(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, FleetStatus]]:
    setup = make_install(tmp_path)
    import_templates(setup.settings, setup.install)
    config = FleetConfig(
        HOST, setup.settings.mqtt_port, setup.install.id_scope, setup.group_key, setup.ssl_ctx
    )
    profile = load_profile(load("connected-cooler").simulator)
    spec = FleetSpec.build(profile, 3, interval_s=0.2, faults=False)
    stop, status = asyncio.Event(), FleetStatus()
    fleet = run_fleet(config, [spec], stop, status)
    async with running(setup.settings), asyncio.TaskGroup() as tg:
        tg.create_task(fleet, name="test fleet")
        try:
            async with httpx.AsyncClient(
                base_url=f"http://{HOST}:{setup.settings.http_port}/api",
                headers={"Authorization": setup.token},
                params={"api-version": API_VERSION},
                timeout=30,
            ) as api:
                yield api, status
        finally:
            stop.set()


async def test_fleet_provisions_sends_telemetry_and_answers_commands(
    api_and_fleet: tuple[httpx.AsyncClient, FleetStatus],
) -> None:
    api, status = api_and_fleet

    async def latest(device: str) -> Any:
        r = await api.get(f"/devices/{device}/telemetry/temperature")
        return r.json() if r.status_code == 200 else None

    for device in ("cooler-001", "cooler-002", "cooler-003"):
        reading = await eventually(lambda d=device: latest(d))  # type: ignore[misc]
        assert -10 < reading["value"] < 30
    assert (status.provisioned, status.failed) == (3, 0)
    r = await api.get("/devices/cooler-001")
    assert r.json()["template"] == "dtmi:aislehub:retail:Cooler;1"  # auto-assigned by model id

    r = await api.post("/devices/cooler-001/commands/reboot", json={})
    assert r.status_code == 201, r.text
    assert r.json()["responseCode"] == 200
    assert r.json()["response"]["status"] == "rebooting"


async def test_writable_property_acknowledged_through_the_twin(
    api_and_fleet: tuple[httpx.AsyncClient, FleetStatus],
) -> None:
    api, _ = api_and_fleet

    async def reported(name: str) -> Any:
        r = await api.get("/devices/cooler-002/properties")
        return r.json().get(name) if r.status_code == 200 else None

    async def state(value: float) -> Any:
        r = await api.get("/devices/cooler-002/properties/status")
        entries = r.json() if r.status_code == 200 else []
        entries = entries.get("value", entries) if isinstance(entries, dict) else entries
        for e in entries:
            if e["name"] == "targetTemperature" and e["desiredValue"] == value:
                return e if e["state"] != "pending" else None
        return None

    assert await eventually(lambda: reported("firmwareVersion")) == "2.3.1"
    r = await api.patch("/devices/cooler-002/properties", json={"targetTemperature": 20})
    assert r.status_code == 202, r.text
    assert (await eventually(lambda: state(20)))["state"] == "rejected"  # out of the range
    r = await api.patch("/devices/cooler-002/properties", json={"targetTemperature": 6})
    assert (await eventually(lambda: state(6)))["state"] == "accepted"
    assert await eventually(lambda: reported("targetTemperature")) == 6
