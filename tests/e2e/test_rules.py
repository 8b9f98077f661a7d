"""Rules end to end: SDK and paho devices against a real server, local webhook and SMTP servers.

Windows are seconds long (any ISO 8601 duration is accepted) so each test takes seconds.
"""

from __future__ import annotations

import hmac
import json
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from hashlib import sha256
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from aiosmtpd.controller import Controller
from azure.iot.device import IoTHubDeviceClient, Message, MethodResponse

from aislehub.protocol.sas import derive_device_key
from tests.e2e.test_sdk_device import group_key
from tests.servers import Server, aislehub, free_port, init_server, wait_until

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

TEMPLATE = "dtmi:aislehub:test:RuleCooler;1"
MODEL = "dtmi:aislehub:test:RuleCoolerModel;1"
SECRET = "s3cret"


def cooler_template() -> dict[str, Any]:
    return {
        "@type": ["ModelDefinition", "DeviceModel"],
        "displayName": "Rule cooler",
        "capabilityModel": {
            "@id": MODEL,
            "@type": "Interface",
            "contents": [
                {"@type": "Telemetry", "name": "temperature", "schema": "double"},
                {"@type": "Telemetry", "name": "location", "schema": "geopoint"},
                {"@type": "Property", "name": "firmwareVersion", "schema": "string"},
                {"@type": ["Property", "Cloud"], "name": "outletLocation", "schema": "geopoint"},
                {"@type": "Command", "name": "defrost", "commandType": "synchronous"},
            ],
        },
    }


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Controller, list[Any]]]:
    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, received
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def hooks() -> Iterator[tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]]:
    got: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.put((dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", got
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def rules_server(
    tmp_path_factory: pytest.TempPathFactory, smtp: tuple[Controller, list[Any]]
) -> Iterator[Server]:
    """One server for the module (starting one takes seconds): each test has its own rules
    and devices, and the restart test runs last."""
    srv = init_server(tmp_path_factory.mktemp("rules"))
    srv.env = {
        "AISLEHUB_SMTP_HOST": "127.0.0.1",
        "AISLEHUB_SMTP_PORT": str(smtp[0].port),
        "AISLEHUB_ACTION_BACKOFF": "0.2",
    }
    srv.start()
    with srv.client() as api:
        assert api.put(f"/deviceTemplates/{TEMPLATE}", json=cooler_template()).status_code == 200
    try:
        yield srv
    finally:
        if srv.proc is not None:
            srv.stop()


def sdk_device(server: Server, device_id: str) -> IoTHubDeviceClient:
    with server.client() as api:
        assert api.put(f"/devices/{device_id}", json={"template": TEMPLATE}).status_code == 200
    client = IoTHubDeviceClient.create_from_symmetric_key(
        symmetric_key=derive_device_key(group_key(server), device_id),
        hostname=server.host,
        device_id=device_id,
        server_verification_cert=server.ca_pem,
        connection_retry_interval=1,
    )
    client.connect()
    return client


def send(client: IoTHubDeviceClient, **values: Any) -> None:
    msg = Message(json.dumps(values), content_encoding="utf-8", content_type="application/json")
    client.send_message(msg)


def put_rule(server: Server, rule_id: str, items: list[Any], **extra: Any) -> dict[str, Any]:
    body = {
        "displayName": rule_id,
        "severity": "critical",
        "target": {"template": TEMPLATE},
        "conditions": {"match": "all", "items": items},
        **extra,
    }
    with server.client() as api:
        r = api.put(f"/rules/{rule_id}", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def alerts(server: Server, **params: str) -> list[dict[str, Any]]:
    with server.client() as api:
        r = api.get("/alerts", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["value"])


def wait_window_start(seconds: int) -> None:
    """Sleep to just after a window boundary so a test's messages share one window."""
    time.sleep(seconds - time.time() % seconds + 0.1)


WARM = {
    "type": "telemetry",
    "field": "temperature",
    "operator": ">",
    "value": 8,
    "aggregation": "avg",
    "window": "PT2S",
}


def test_window_rule_fires_once_resolves_and_runs_webhook_email_command(
    rules_server: Server,
    hooks: tuple[str, queue.Queue[tuple[dict[str, str], bytes]]],
    smtp: tuple[Controller, list[Any]],
) -> None:
    server, (url, hook_bodies) = rules_server, hooks
    device = sdk_device(server, "cooler-1")
    methods: queue.Queue[str] = queue.Queue()

    def on_method(request: Any) -> None:
        methods.put(request.name)
        device.send_method_response(MethodResponse.create_from_method_request(request, 200, {}))

    device.on_method_request_received = on_method
    try:
        put_rule(
            server,
            "too-warm",
            [WARM],
            actions=[
                {"type": "webhook", "url": url, "secret": SECRET},
                {"type": "email", "to": ["ops@example.com"]},
                {"type": "command", "name": "defrost"},
            ],
        )
        time.sleep(1.0)  # hot reload: the engine polls every 0.25 s
        wait_window_start(2)
        for _ in range(3):
            send(device, temperature=12.0)
            time.sleep(0.4)
        found = wait_until(lambda: alerts(server, rule="too-warm"), 6)
        assert len(found) == 1 and found[0]["state"] == "open"
        assert found[0]["severity"] == "critical" and found[0]["device"] == "cooler-1"
        headers, body = hook_bodies.get(timeout=5)
        expected = "sha256=" + hmac.new(SECRET.encode(), body, sha256).hexdigest()
        assert headers["X-Aislehub-Signature"] == expected
        assert json.loads(body)["alert"]["rule"] == "too-warm"
        assert methods.get(timeout=5) == "defrost"
        assert wait_until(lambda: smtp[1], 5)[0].rcpt_tos == ["ops@example.com"]
        for _ in range(4):  # still warm in the next windows: no second alert
            send(device, temperature=11.0)
            time.sleep(0.5)
        assert len(alerts(server, rule="too-warm")) == 1
        done = wait_until(
            lambda: all(
                a["state"] == "succeeded" for a in alerts(server, rule="too-warm")[0]["actions"]
            ),
            5,
        )
        assert done, alerts(server, rule="too-warm")[0]["actions"]
        for _ in range(6):
            send(device, temperature=3.0)
            time.sleep(0.4)
        resolved = wait_until(lambda: alerts(server, rule="too-warm", state="resolved"), 5)
        assert len(resolved) == 1 and resolved[0]["resolvedBy"] == "rule"
        assert len(alerts(server, rule="too-warm")) == 1
        assert 0 < server.metric("rules_cpu_seconds_total") < 60  # its own work only
        assert 0 < server.metric("rules_watermark_lag_seconds") < 2  # keeping up
    finally:
        device.shutdown()


def test_geofence_from_cloud_property_and_acknowledge(rules_server: Server) -> None:
    server = rules_server
    device = sdk_device(server, "cooler-2")
    try:
        with server.client() as api:
            outlet = {"outletLocation": {"lat": 47.6062, "lon": -122.3321}}
            assert api.patch("/devices/cooler-2/properties", json=outlet).status_code in (200, 202)
        put_rule(
            server,
            "moved",
            [
                {
                    "type": "geofence",
                    "location": "location",
                    "center": {"property": "outletLocation"},
                    "radiusMeters": 200,
                }
            ],
        )
        time.sleep(1.5)
        send(device, location={"lat": 47.6063, "lon": -122.3321})  # ~11 m away
        time.sleep(1.0)
        assert alerts(server, rule="moved") == []
        send(device, location={"lat": 47.6062 + 500 / 111_195, "lon": -122.3321})  # 500 m
        opened = wait_until(lambda: alerts(server, rule="moved"), 5)
        assert len(opened) == 1
        with server.client() as api:
            r = api.post(f"/alerts/{opened[0]['id']}/acknowledge")
            assert r.status_code == 200 and r.json()["state"] == "acknowledged"
            assert r.json()["acknowledgedBy"]
            assert api.post(f"/alerts/{opened[0]['id']}/resolve").json()["state"] == "resolved"
            r = api.post(f"/alerts/{opened[0]['id']}/acknowledge")
            assert r.status_code == 409 and r.json()["error"]["code"] == "Conflict"
            assert api.get("/alerts", params={"state": "nope"}).status_code == 400
    finally:
        device.shutdown()


def test_offline_rule_fires_when_a_device_stops_and_disabling_takes_effect(
    rules_server: Server,
) -> None:
    server = rules_server
    device = sdk_device(server, "cooler-3")
    try:
        put_rule(server, "offline", [{"type": "noData", "duration": "PT2S"}])
        for _ in range(6):
            send(device, temperature=4.0)
            time.sleep(0.4)
        mine = {"rule": "offline", "device": "cooler-3"}
        assert alerts(server, **mine) == []
        opened = wait_until(lambda: alerts(server, **mine), 5)  # it stopped sending
        assert len(opened) == 1 and opened[0]["state"] == "open"
        send(device, temperature=4.0)
        assert wait_until(lambda: alerts(server, **mine, state="resolved"), 3)
        with server.client() as api:  # disabled: the silence that follows raises nothing
            assert api.patch("/rules/offline", json={"enabled": False}).json()["enabled"] is False
        time.sleep(3.5)
        assert len(alerts(server, **mine)) == 1
    finally:
        device.shutdown()


def paho_device(server: Server, device_id: str) -> mqtt.Client:
    from tests.e2e.test_plain_mqtt import paho_client, sas

    with server.client() as api:
        assert api.put(f"/devices/{device_id}", json={"template": TEMPLATE}).status_code == 200
        key = api.get(f"/devices/{device_id}/credentials").json()["symmetricKey"]["primaryKey"]
    client, connacks = paho_client(server, device_id, sas(server, device_id, key))
    assert connacks.get(timeout=5) == 0
    return client


def test_cli_rules_and_alerts(rules_server: Server, tmp_path: Path) -> None:
    server = rules_server
    path = tmp_path / "rules.json"
    rule = {
        "id": "cli-rule",
        "target": {"template": TEMPLATE},
        "conditions": {"items": [{"type": "noData", "minutes": 1}]},
    }
    path.write_text(json.dumps([rule]))
    data = ("--data-dir", str(server.data_dir))

    def cli(*args: str) -> Any:
        out = subprocess.run(aislehub(*args, *data), capture_output=True, timeout=60, check=True)
        return json.loads(out.stdout) if out.stdout.strip() else None

    assert cli("rule", "import", str(path)) == ["cli-rule"]
    assert cli("rule", "disable", "cli-rule")["enabled"] is False
    with server.client() as api:
        assert api.get("/rules/cli-rule").json()["enabled"] is False
    assert "cli-rule" in [r["id"] for r in cli("rule", "list")]
    opened = cli("alert", "list", "--state", "open")
    if opened:
        assert cli("alert", "ack", opened[0]["id"], "--by", "ops")["acknowledgedBy"] == "ops"
    cli("rule", "delete", "cli-rule")
    bad = subprocess.run(aislehub("rule", "show", "cli-rule", *data), capture_output=True)
    assert bad.returncode == 1


def test_rule_api_errors_and_paging(rules_server: Server) -> None:
    server = rules_server
    with server.client() as api:
        bad = {
            "target": {"template": TEMPLATE},
            "conditions": {"items": [{"type": "telemetry", "field": "nope", "value": 1}]},
        }
        r = api.put("/rules/bad", json=bad)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "InvalidRule"
        assert "$.conditions.items[0].field" in r.json()["error"]["message"]
        assert api.get("/rules/missing").status_code == 404
        assert api.put("/rules/Bad_Id", json=bad).status_code == 400
    for i in range(3):
        put_rule(server, f"r{i}", [{"type": "noData", "minutes": 60}])
    with server.client() as api:
        page = api.get("/rules", params={"maxpagesize": 2}).json()
        assert len(page["value"]) == 2 and "$skiptoken" in page["nextLink"]
        ids = [r["id"] for r in api.get("/rules", params={"maxpagesize": 100}).json()["value"]]
        assert ids == sorted(ids) and {"r0", "r1", "r2"} <= set(ids)
        r0 = api.get("/rules/r0").json()
        r = api.put("/rules/r0", json={**r0, "severity": "info"}, headers={"If-Match": "stale"})
        assert r.status_code == 412
        assert api.delete("/rules/r0").status_code == 204
        assert api.delete("/rules/r0").status_code == 404


def test_restart_in_the_middle_of_a_window_fires_exactly_once(rules_server: Server) -> None:
    server = rules_server
    put_rule(server, "warm-5s", [{**WARM, "window": "PT5S"}])
    time.sleep(1.0)
    client = paho_device(server, "cooler-4")
    topic = "devices/cooler-4/messages/events/"
    wait_window_start(5)
    for _ in range(3):
        client.publish(topic, b'{"temperature": 20}', qos=1).wait_for_publish(5)
        time.sleep(0.2)
    client.loop_stop()
    client.disconnect()
    server.stop(signal.SIGTERM)  # mid-window: the partial window is in the checkpoint
    server.start()
    client = paho_device(server, "cooler-4")
    try:
        client.publish(topic, b'{"temperature": 20}', qos=1).wait_for_publish(5)
        opened = wait_until(lambda: alerts(server, rule="warm-5s"), 10)
        assert len(opened) == 1
        time.sleep(2.0)
        assert len(alerts(server, rule="warm-5s")) == 1
    finally:
        client.loop_stop()
        client.disconnect()
