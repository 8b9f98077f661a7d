"""A Plug and Play device on the official SDK against a device template: auto-assignment at
DPS, writable properties acknowledged (accepted and rejected) and typed commands."""

from __future__ import annotations

import json
import queue
import time
from typing import Any
from urllib.parse import quote

import pytest
from azure.iot.device import (
    IoTHubDeviceClient,
    Message,
    MethodResponse,
    ProvisioningDeviceClient,
)

from aislehub.protocol.sas import derive_device_key
from tests.api.template_samples import CONTROLLER, controller_template
from tests.e2e.test_sdk_device import group_key
from tests.servers import Server, wait_until

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def pnp_device(server: Server, device_id: str) -> IoTHubDeviceClient:
    """Provision announcing the model (``modelId``), then connect naming it (``model-id``)."""
    key = derive_device_key(group_key(server), device_id)
    provisioning = ProvisioningDeviceClient.create_from_symmetric_key(
        provisioning_host=server.host,
        registration_id=device_id,
        id_scope=server.id_scope,
        symmetric_key=key,
        server_verification_cert=server.ca_pem,
    )
    provisioning.provisioning_payload = {"modelId": CONTROLLER}
    assert provisioning.register().status == "assigned"
    client = IoTHubDeviceClient.create_from_symmetric_key(
        symmetric_key=key,
        hostname=server.host,
        device_id=device_id,
        server_verification_cert=server.ca_pem,
        product_info=CONTROLLER,
    )
    client.connect()
    return client


def ack(client: IoTHubDeviceClient, patch: dict[str, Any], code: int, text: str) -> None:
    """Acknowledge every component property of a desired patch (PnP convention)."""
    reported: dict[str, Any] = {}
    for component, props in patch.items():
        if isinstance(props, dict):
            reported[component] = {"__t": "c"} | {
                name: {"value": value, "ac": code, "av": patch["$version"], "ad": text}
                for name, value in props.items()
                if name != "__t"
            }
    client.patch_twin_reported_properties(reported)


def telemetry(body: dict[str, Any], component: str | None) -> Message:
    """A PnP telemetry message; a component's carries its name in ``$.sub``."""
    message = Message(json.dumps(body), content_encoding="utf-8", content_type="application/json")
    if component:
        message.custom_properties["$.sub"] = component
    return message


def status_of(server: Server, device_id: str, component: str, state: str) -> Any:
    with server.client() as api:
        rows = api.get(f"/devices/{device_id}/properties/status").json()["value"]
    found = [r for r in rows if r["component"] == component and r["state"] == state]
    return found[0] if found else None


def test_pnp_device_on_its_template(server: Server) -> None:
    with server.client() as api:
        r = api.put(f"/deviceTemplates/{CONTROLLER}", json=controller_template())
        assert r.status_code == 200, r.text
        encoded = api.get("/deviceTemplates/" + quote(CONTROLLER, safe=""))  # through uvicorn
        assert encoded.status_code == 200 and encoded.json()["@id"] == CONTROLLER
    client = pnp_device(server, "therm-1")
    try:
        with server.client() as api:
            assert api.get("/devices/therm-1").json()["template"] == CONTROLLER
            names = [c["name"] for c in api.get("/devices/therm-1/components").json()["value"]]
            assert names == ["thermostat1", "thermostat2"]

        patches: queue.Queue[dict[str, Any]] = queue.Queue()
        client.on_twin_desired_properties_patch_received = patches.put

        def on_method(request: Any) -> None:
            answer = {"name": request.name, "payload": request.payload}
            client.send_method_response(
                MethodResponse.create_from_method_request(request, 200, answer)
            )

        client.on_method_request_received = on_method
        time.sleep(0.5)  # the SDK subscribes lazily when a handler is set

        with server.client() as api:
            write = api.patch(
                "/devices/therm-1/components/thermostat1/properties",
                json={"targetTemperature": 21.5},
            )
            assert write.status_code == 202
            ack(client, patches.get(timeout=10), 200, "applied")
            accepted = wait_until(lambda: status_of(server, "therm-1", "thermostat1", "accepted"))
            assert accepted["desiredValue"] == 21.5 and accepted["ackCode"] == 200

            api.patch(
                "/devices/therm-1/components/thermostat2/properties",
                json={"targetTemperature": 99},
            )
            ack(client, patches.get(timeout=10), 400, "out of range")
            rejected = wait_until(lambda: status_of(server, "therm-1", "thermostat2", "rejected"))
            assert rejected["ackDescription"] == "out of range"
            props = api.get("/devices/therm-1/properties").json()
            assert props["thermostat1"]["targetTemperature"] == 21.5
            assert props["thermostat2"]["$metadata"]["targetTemperature"]["ackCode"] == 400

            mistyped = api.patch(
                "/devices/therm-1/components/thermostat1/properties",
                json={"targetTemperature": "warm"},
            )
            assert mistyped.status_code == 422, mistyped.text
            with pytest.raises(queue.Empty):
                patches.get(timeout=1)  # never reached the device

            bad = api.post("/devices/therm-1/commands/reboot", json={"request": "soon"})
            assert bad.status_code == 422, bad.text
            run = api.post("/devices/therm-1/commands/reboot", json={"request": 3})
            assert run.status_code == 201, run.text
            assert run.json()["response"] == {"name": "reboot", "payload": 3}
            path = "/devices/therm-1/components/thermostat2/commands/getMaxMinReport"
            report = api.post(path, json={"request": "2024-01-01T00:00:00Z"})
            assert report.status_code == 201, report.text
            assert report.json()["response"]["name"] == "thermostat2*getMaxMinReport"
            assert api.get(path).json()["value"] == [report.json()]

        for component, body in [
            ("thermostat1", {"temperature": 22.5}),
            ("thermostat2", {"temperature": "warm", "humidity": 40}),
            (None, {"workingSet": 512}),
        ]:
            client.send_message(telemetry(body, component))
        with server.client() as api:
            last = "/devices/therm-1/telemetry/workingSet"  # sent last: all are stored then
            assert wait_until(lambda: api.get(last).status_code == 200)
            assert api.get(last).json()["value"] == 512
            latest = api.get("/devices/therm-1/components/thermostat1/telemetry/temperature")
            assert latest.json()["value"] == 22.5
            kept = api.get("/devices/therm-1/unmodeledTelemetry").json()
            assert (kept["unknownCount"], kept["mistypedCount"]) == (1, 1)
            assert {(f["component"], f["name"], f["reason"]) for f in kept["value"]} == {
                ("thermostat2", "humidity", "unknown"),
                ("thermostat2", "temperature", "mistyped"),
            }
    finally:
        client.shutdown()
