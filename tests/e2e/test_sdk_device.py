"""The official azure-iot-device SDK, unmodified, against a running aislehub server."""

from __future__ import annotations

import json
import queue
import subprocess
import time
from typing import Any

import httpx
import pytest
from azure.iot.device import (
    IoTHubDeviceClient,
    Message,
    MethodResponse,
    ProvisioningDeviceClient,
)

from aislehub.protocol.sas import derive_device_key
from tests.servers import Server, aislehub, wait_until

MODEL_ID = "dtmi:aislehub:test:Cooler;1"

# The SDK (paho-mqtt 1.6 underneath) leaves its internal socket pairs to the garbage collector.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def group_key(server: Server) -> str:
    with server.client() as api:
        group = api.get("/enrollmentGroups/SAS-IoT-Devices").json()
    return str(group["attestation"]["symmetricKey"]["primaryKey"])


def provision(server: Server, device_id: str) -> tuple[str, str]:
    key = derive_device_key(group_key(server), device_id)
    client = ProvisioningDeviceClient.create_from_symmetric_key(
        provisioning_host=server.host,
        registration_id=device_id,
        id_scope=server.id_scope,
        symmetric_key=key,
        server_verification_cert=server.ca_pem,
    )
    client.provisioning_payload = {"modelId": MODEL_ID}
    result = client.register()
    assert result.status == "assigned"
    assert result.registration_state.device_id == device_id
    return str(result.registration_state.assigned_hub), key


def connect(server: Server, device_id: str, **kwargs: Any) -> IoTHubDeviceClient:
    hub, key = provision(server, device_id)
    assert hub == server.host
    client = IoTHubDeviceClient.create_from_symmetric_key(
        symmetric_key=key,
        hostname=hub,
        device_id=device_id,
        server_verification_cert=server.ca_pem,
        product_info=MODEL_ID,
        connection_retry_interval=1,
        **kwargs,
    )
    client.connect()
    return client


def latest(
    server: Server,
    device_id: str,
    name: str,
    component: str | None = None,
    module: str | None = None,
) -> Any:
    path = f"/devices/{device_id}/telemetry/{name}"
    if component:
        path = f"/devices/{device_id}/components/{component}/telemetry/{name}"
    if module:
        path = f"/devices/{device_id}/modules/{module}/telemetry/{name}"
    with server.client() as api:
        r = api.get(path)
    return r.json() if r.status_code == 200 else None


def test_provision_telemetry_twin_methods_c2d(server: Server) -> None:
    client = connect(server, "cooler-1")
    try:
        with server.client() as api:
            device = api.get("/devices/cooler-1").json()
        assert device["provisioned"] is True
        shown = subprocess.run(
            aislehub("device", "show", "cooler-1", "--data-dir", str(server.data_dir)),
            check=True,
            capture_output=True,
            timeout=60,
        )
        assert json.loads(shown.stdout)["modelId"] == MODEL_ID  # from the DPS payload

        msg = Message(
            '{"temperature": 4.5, "door": "closed"}',
            message_id="m-1",
            content_encoding="utf-8",
            content_type="application/json",
        )
        msg.custom_properties["$.sub"] = "thermostat1"
        msg.custom_properties["alert level"] = "hi/low&x=y"
        client.send_message(msg)
        got = wait_until(lambda: latest(server, "cooler-1", "temperature", "thermostat1"), 5)
        assert got["value"] == 4.5

        twin = client.get_twin()
        assert "$version" in twin["desired"]
        client.patch_twin_reported_properties({"firmware": "1.2.3"})
        with server.client() as api:
            props = api.get("/devices/cooler-1/properties").json()
        assert props["firmware"] == "1.2.3"

        patches: queue.Queue[dict[str, Any]] = queue.Queue()
        client.on_twin_desired_properties_patch_received = patches.put
        methods: queue.Queue[str] = queue.Queue()

        def on_method(request: Any) -> None:
            methods.put(request.name)
            client.send_method_response(
                MethodResponse.create_from_method_request(request, 200, {"echo": request.payload})
            )

        client.on_method_request_received = on_method
        messages: queue.Queue[Message] = queue.Queue()
        client.on_message_received = messages.put
        time.sleep(0.5)  # the SDK subscribes lazily when a handler is set

        with server.client() as api:
            r = api.patch("/devices/cooler-1/properties", json={"setpoint": 3.5})
            assert r.status_code == 202
            patch = patches.get(timeout=10)
            assert patch["setpoint"] == 3.5 and patch["$version"] >= 2

            r = api.post(
                "/devices/cooler-1/commands/reboot",
                json={"request": {"delay": 1}, "responseTimeout": 10},
            )
            assert r.status_code == 201, r.text
            assert r.json()["responseCode"] == 200
            assert r.json()["response"] == {"echo": {"delay": 1}}

            r = api.post(
                "/devices/cooler-1/messages",
                json={"data": {"cmd": "defrost"}, "properties": {"reason": "a/b"}},
            )
            assert r.status_code == 202, r.text
        c2d = messages.get(timeout=10)
        assert c2d.custom_properties["reason"] == "a/b"
        assert c2d.data == b'{"cmd":"defrost"}'
    finally:
        client.shutdown()


def test_server_restart_then_methods_and_patches_without_resubscribe(server: Server) -> None:
    client = connect(server, "cooler-2")
    try:
        patches: queue.Queue[dict[str, Any]] = queue.Queue()
        client.on_twin_desired_properties_patch_received = patches.put

        def on_method(request: Any) -> None:
            client.send_method_response(MethodResponse.create_from_method_request(request, 200))

        client.on_method_request_received = on_method
        time.sleep(0.5)
        server.stop()  # the server drops every connection ...
        server.start()  # ... and comes back with no session state in memory
        with server.client() as api:

            def online() -> bool:
                r = api.post(
                    "/devices/cooler-2/commands/ping",
                    json={"connectionTimeout": 5, "responseTimeout": 5},
                )
                return r.status_code == 201

            assert wait_until(online, 30, 0.5)
            r = api.patch("/devices/cooler-2/properties", json={"setpoint": 7})
            assert r.status_code == 202
        patch = patches.get(timeout=10)
        while "setpoint" not in patch:  # the SDK may first replay a twin-derived patch
            patch = patches.get(timeout=10)
        assert patch["setpoint"] == 7
    finally:
        client.shutdown()


def test_sas_renewal_reconnects_and_keeps_working(server: Server) -> None:
    client = connect(server, "cooler-3", sastoken_ttl=125)  # renews every ~5 s
    try:

        def on_method(request: Any) -> None:
            client.send_method_response(MethodResponse.create_from_method_request(request, 200))

        client.on_method_request_received = on_method
        time.sleep(7)
        client.send_message('{"temperature": 5}')
        with server.client() as api:
            r = api.post("/devices/cooler-3/commands/ping", json={"responseTimeout": 10})
            assert r.status_code == 201, r.text
        assert connections_total(server) >= 2  # the renewal was a real reconnect
        assert latest(server, "cooler-3", "temperature")["value"] == 5
    finally:
        client.shutdown()


def connections_total(server: Server) -> float:
    text = httpx.get(f"http://{server.host}:{server.http_port}/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("aislehub_mqtt_connections_total"))
    return float(line.rsplit(" ", 1)[1])


def test_websockets_transport(server: Server) -> None:
    client = connect(server, "cooler-ws", websockets=True)
    try:
        client.send_message('{"temperature": 6.5}')
        got = wait_until(lambda: latest(server, "cooler-ws", "temperature"), 5)
        assert got["value"] == 6.5
    finally:
        client.shutdown()


@pytest.mark.parametrize("bad", ["wrong-key"])
def test_bad_key_is_refused(server: Server, bad: str) -> None:
    from azure.iot.device.exceptions import CredentialError

    provision(server, "cooler-4")
    client = IoTHubDeviceClient.create_from_symmetric_key(
        symmetric_key="d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktMTI=",
        hostname=server.host,
        device_id="cooler-4",
        server_verification_cert=server.ca_pem,
    )
    with pytest.raises(CredentialError):
        client.connect()
    client.shutdown()


def test_module_client_telemetry_and_module_twin(server: Server) -> None:
    from azure.iot.device import IoTHubModuleClient

    _, key = provision(server, "gateway-1")
    client = IoTHubModuleClient.create_from_connection_string(
        f"HostName={server.host};DeviceId=gateway-1;ModuleId=camera;SharedAccessKey={key}",
        server_verification_cert=server.ca_pem,
    )
    client.connect()
    try:
        client.send_message('{"people": 3}')
        client.patch_twin_reported_properties({"fps": 15})
        got = wait_until(lambda: latest(server, "gateway-1", "people", module="camera"), 5)
        assert got["value"] == 3
        with server.client() as api:
            props = api.get("/devices/gateway-1/modules/camera/properties").json()
            assert props["fps"] == 15
            assert "fps" not in api.get("/devices/gateway-1/properties").json()
    finally:
        client.shutdown()
