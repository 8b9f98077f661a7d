"""A command job over 50 real MQTT devices against a real server process: batches of 10,
a cancellation threshold that trips when devices fail the command, then a rerun of the
failed devices.

The devices are the project's simulator clients (our MQTT codec, SAS tokens, the IoT Hub
topics) on the server's plain MQTT listener, all in the test's event loop. Devices
dev00-dev49 fall in batches of ten by id. dev03 answers 500 (one failure in batch 1:
under the threshold); in batch 3 dev20-dev24 answer 500 and dev25-dev26 never answer
(the server's command response timeout is 2 s here): 7 of 10 failed, over the 50 %
per-batch threshold, so batches 4 and 5 are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aislehub.protocol.sas import derive_device_key
from aislehub.simulator.client import DeviceClient
from aislehub.simulator.handlers import Handlers
from aislehub.simulator.transport import Endpoint
from tests.api.template_samples import CONTROLLER, controller_template
from tests.servers import API_VERSION, Server, init_server

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

DEVICES = [f"dev{i:02}" for i in range(50)]
ERRORS = {"dev03", "dev20", "dev21", "dev22", "dev23", "dev24"}
SILENT = {"dev25", "dev26"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server(tmp_path: Path) -> Any:
    srv = init_server(tmp_path)
    (srv.data_dir / "aislehub.toml").write_text("[jobs]\ncommand_response_timeout = 2\n")
    srv.start()
    yield srv
    srv.stop()


class Fleet:
    """How each device answers ``reboot``; the test changes it between runs."""

    def __init__(self) -> None:
        self.mode = {
            d: "error" if d in ERRORS else "silent" if d in SILENT else "ok" for d in DEVICES
        }
        self.calls: dict[str, int] = dict.fromkeys(DEVICES, 0)

    def handlers(self, device_id: str) -> Handlers:
        async def method(name: str, payload: Any) -> tuple[int, Any]:
            self.calls[device_id] += 1
            mode = self.mode[device_id]
            if mode == "silent":
                await asyncio.sleep(10)  # past the server's timeout: it records no answer
            if mode == "error":
                return 500, {"message": "compressor busy"}
            return 200, {"rebooting": payload}

        return Handlers(method=method)


@pytest.fixture
async def api(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server.api,
        headers={"Authorization": server.token},
        params={"api-version": API_VERSION},
        timeout=30,
    ) as client:
        yield client


@contextlib.asynccontextmanager
async def connected(server: Server, api: httpx.AsyncClient, fleet: Fleet) -> AsyncIterator[None]:
    """Every device connected (and subscribed) for the block; all disconnected after it."""
    group = (await api.get("/enrollmentGroups/SAS-IoT-Devices")).json()
    group_key = group["attestation"]["symmetricKey"]["primaryKey"]
    endpoint = Endpoint(server.host, server.plain_port)
    async with contextlib.AsyncExitStack() as stack:
        await asyncio.gather(
            *(
                stack.enter_async_context(
                    DeviceClient(
                        endpoint, d, derive_device_key(group_key, d), handlers=fleet.handlers(d)
                    )
                )
                for d in DEVICES
            )
        )
        yield


async def until_ended(api: httpx.AsyncClient, job_id: str, within: float = 20) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            job: dict[str, Any] = (await api.get(f"/jobs/{job_id}")).json()
            if job["status"] not in ("pending", "running"):
                return job
            await asyncio.sleep(0.1)


async def test_batches_threshold_and_rerun(server: Server, api: httpx.AsyncClient) -> None:
    assert (await api.put(f"/deviceTemplates/{CONTROLLER}", json=controller_template())).is_success
    for d in DEVICES:
        assert (await api.put(f"/devices/{d}", json={"template": CONTROLLER})).is_success
    group = {
        "displayName": "Coolers",
        "filter": f'SELECT * FROM devices WHERE $template = "{CONTROLLER}"',
    }
    assert (await api.put("/deviceGroups/coolers", json=group)).status_code == 200
    fleet = Fleet()
    async with connected(server, api, fleet):
        job = {
            "displayName": "Reboot the coolers",
            "group": "coolers",
            "batch": {"type": "number", "value": 10},
            "cancellationThreshold": {"type": "percentage", "value": 50, "batch": True},
            "data": [{"type": "command", "target": CONTROLLER, "path": "reboot", "value": 3}],
        }
        created = await api.put("/jobs/reboot-1", json=job)
        assert created.status_code == 200, created.text
        assert created.json()["progress"]["total"] == 50

        done = await until_ended(api, "reboot-1")
        assert done["status"] == "cancelled"
        assert done["progress"] == {"total": 50, "pending": 20, "completed": 22, "failed": 8}
        devices = (await api.get("/jobs/reboot-1/devices", params={"maxpagesize": 100})).json()
        status = {item["id"]: item for item in devices["value"]}
        assert {d for d, s in status.items() if s["status"] == "failed"} == ERRORS | SILENT
        assert "status 500" in status["dev20"]["failureReason"]
        assert "did not answer" in status["dev25"]["failureReason"]
        assert all(status[f"dev{i}"]["status"] == "cancelled" for i in range(30, 50))
        assert all(fleet.calls[f"dev{i}"] == 0 for i in range(30, 50))  # never sent

        for d in ERRORS | SILENT:
            fleet.mode[d] = "ok"
        rerun = await api.put("/jobs/reboot-1/rerun/reboot-1-failed")
        assert rerun.status_code == 200, rerun.text
        assert rerun.json()["progress"]["total"] == 8
        again = await until_ended(api, "reboot-1-failed")
        assert again["status"] == "complete"
        assert again["progress"] == {"total": 8, "pending": 0, "completed": 8, "failed": 0}
        assert all(fleet.calls[d] == 2 for d in ERRORS | SILENT)

        results = await api.get("/jobs/reboot-1/devices", params={"format": "csv"})
        rows = list(csv.DictReader(io.StringIO(results.text)))
        assert len(rows) == 50 and {r["batch"] for r in rows} == {"1", "2", "3", "4", "5"}
