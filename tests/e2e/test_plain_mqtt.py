"""A plain MQTT client (paho-mqtt) with a hand-made SAS token, and bad input on the wire."""

from __future__ import annotations

import queue
import socket
import subprocess
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from aislehub.errors import NeedMoreData
from aislehub.protocol.mqtt import (
    ConnAck,
    Connect,
    PubAck,
    Publish,
    decode_packet,
    encode_packet,
)
from aislehub.protocol.sas import generate_sas_token
from tests.api.template_samples import CONTROLLER, controller_template
from tests.servers import Server, aislehub, wait_until


def create_device(server: Server, device_id: str) -> str:
    with server.client() as api:
        assert api.put(f"/devices/{device_id}", json={}).status_code == 200
        creds = api.get(f"/devices/{device_id}/credentials").json()
    return str(creds["symmetricKey"]["primaryKey"])


def sas(server: Server, device_id: str, key: str, ttl: int = 3600) -> str:
    return generate_sas_token(f"{server.host}/devices/{device_id}", key, int(time.time()) + ttl)


def paho_client(
    server: Server, device_id: str, password: str, model_id: str | None = None
) -> tuple[mqtt.Client, Any]:
    connacks: queue.Queue[int] = queue.Queue()
    client = mqtt.Client(client_id=device_id, clean_session=False, protocol=mqtt.MQTTv311)
    query = "api-version=2021-04-12" + (f"&model-id={model_id}" if model_id else "")
    client.username_pw_set(f"{server.host}/{device_id}/?{query}", password)
    client.on_connect = lambda c, u, f, rc: connacks.put(rc)
    client.connect(server.host, server.plain_port, keepalive=30)
    client.loop_start()
    return client, connacks


def latest(server: Server, device_id: str, name: str) -> Any:
    with server.client() as api:
        r = api.get(f"/devices/{device_id}/telemetry/{name}")
    return r.json() if r.status_code == 200 else None


def test_paho_publishes_and_answers_a_method(server: Server) -> None:
    key = create_device(server, "shelf-1")
    client, connacks = paho_client(server, "shelf-1", sas(server, "shelf-1", key))
    try:
        assert connacks.get(timeout=5) == 0

        def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
            rid = msg.topic.split("$rid=")[1]
            c.publish(f"$iothub/methods/res/200/?$rid={rid}", b'{"ok": true}', qos=1)

        client.on_message = on_message
        client.subscribe("$iothub/methods/POST/#", qos=1)
        info = client.publish(
            "devices/shelf-1/messages/events/%24.mid=7&zone=A", b'{"weightKg": 12.5}', qos=1
        )
        info.wait_for_publish(5)
        assert wait_until(lambda: latest(server, "shelf-1", "weightKg"), 5)["value"] == 12.5
        with server.client() as api:
            r = api.post("/devices/shelf-1/commands/recount", json={"responseTimeout": 5})
        assert r.status_code == 201 and r.json()["response"] == {"ok": True}
    finally:
        client.loop_stop()
        client.disconnect()


def test_bad_credentials_get_connack_5(server: Server) -> None:
    key = create_device(server, "shelf-2")
    expired = generate_sas_token(f"{server.host}/devices/shelf-2", key, int(time.time()) - 5)
    for password in ("SharedAccessSignature sr=x&sig=y&se=1", expired):
        client, connacks = paho_client(server, "shelf-2", password)
        try:
            assert connacks.get(timeout=5) == 5
        finally:
            client.loop_stop()
            client.disconnect()
    assert server.metric("mqtt_connect_refused_total") >= 2


def test_model_id_assigns_the_template_and_a_blocked_device_cannot_reconnect(
    server: Server,
) -> None:
    with server.client() as api:
        r = api.put(f"/deviceTemplates/{CONTROLLER}", json=controller_template())
        assert r.status_code == 200, r.text
    key = create_device(server, "therm-1")
    client, connacks = paho_client(server, "therm-1", sas(server, "therm-1", key), CONTROLLER)
    disconnects: queue.Queue[int] = queue.Queue()
    client.on_disconnect = lambda c, u, rc: disconnects.put(rc)
    try:
        assert connacks.get(timeout=5) == 0
        with server.client() as api:
            assert api.get("/devices/therm-1").json()["template"] == CONTROLLER
            assert api.patch("/devices/therm-1", json={"enabled": False}).status_code == 200
        disconnects.get(timeout=5)  # blocking drops the live connection at once ...
        assert connacks.get(timeout=10) == 5  # ... and paho's reconnect is refused
    finally:
        client.loop_stop()
        client.disconnect()


def raw_connect(server: Server, device_id: str, key: str) -> socket.socket:
    sock = socket.create_connection((server.host, server.plain_port), timeout=5)
    connect = Connect(
        client_id=device_id,
        username=f"{server.host}/{device_id}/?api-version=x",
        password=sas(server, device_id, key).encode(),
        clean_session=True,
        keep_alive=30,
    )
    sock.sendall(encode_packet(connect))
    packet, _ = decode_packet(sock.recv(4), 1024)
    assert isinstance(packet, ConnAck) and packet.return_code == 0
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    try:
        while True:
            if not sock.recv(4096):
                return True
    except ConnectionResetError:  # closed while our bytes were still arriving
        return True
    except TimeoutError:
        return False


@pytest.mark.parametrize("case", ["malformed", "oversized", "foreign-topic"])
def test_bad_packets_close_only_that_connection(server: Server, case: str) -> None:
    good_key = create_device(server, "good-1")
    bad_key = create_device(server, "bad-1")
    good = raw_connect(server, "good-1", good_key)
    bad = raw_connect(server, "bad-1", bad_key)
    if case == "malformed":
        bad.sendall(b"\x30\xff\xff\xff\xff\x7f")  # remaining length over four bytes
    elif case == "oversized":
        payload = b"x" * (300 * 1024)
        bad.sendall(
            encode_packet(Publish("devices/bad-1/messages/events/", payload, 1, packet_id=1))
        )
    else:
        bad.sendall(
            encode_packet(Publish("devices/good-1/messages/events/", b"{}", 1, packet_id=1))
        )
    assert closed_by_server(bad)
    good.sendall(
        encode_packet(Publish("devices/good-1/messages/events/", b'{"t": 1}', 1, packet_id=9))
    )
    assert good.recv(4) == b"\x40\x02\x00\x09"  # PUBACK: everyone else keeps flowing
    counter = {
        "malformed": "mqtt_protocol_errors_total",
        "oversized": "mqtt_oversized_total",
        "foreign-topic": "mqtt_topic_refused_total",
    }[case]
    assert server.metric(counter) == 1
    good.close()
    bad.close()


def test_invalid_json_is_kept_raw_and_counted(server: Server) -> None:
    key = create_device(server, "raw-1")
    sock = raw_connect(server, "raw-1", key)
    sock.sendall(
        encode_packet(Publish("devices/raw-1/messages/events/", b"\x00not json", 1, packet_id=3))
    )
    assert sock.recv(4) == b"\x40\x02\x00\x03"
    sock.close()
    server.stop()  # a clean stop drains the log into the store
    import duckdb

    con = duckdb.connect(str(server.data_dir / "telemetry.duckdb"), read_only=True)
    rows = con.execute("SELECT raw, valid_json FROM messages WHERE device_id = 'raw-1'").fetchall()
    assert rows == [(b"\x00not json", False)]


def connect_session(
    server: Server, device_id: str, key: str, clean: bool
) -> tuple[socket.socket, ConnAck]:
    sock = socket.create_connection((server.host, server.plain_port), timeout=5)
    connect = Connect(
        client_id=device_id,
        username=f"{server.host}/{device_id}/?api-version=x",
        password=sas(server, device_id, key).encode(),
        clean_session=clean,
        keep_alive=30,
    )
    sock.sendall(encode_packet(connect))
    packet, _ = decode_packet(sock.recv(4), 1024)
    assert isinstance(packet, ConnAck) and packet.return_code == 0
    return sock, packet


def read_publish(sock: socket.socket) -> Publish:
    buf = b""
    while True:
        buf += sock.recv(65536)
        try:
            packet, _ = decode_packet(buf, 1 << 20)
        except NeedMoreData:
            continue
        assert isinstance(packet, Publish)
        return packet


def test_persistent_session_redelivers_unacknowledged_c2d(server: Server) -> None:
    key = create_device(server, "sess-1")
    sock, connack = connect_session(server, "sess-1", key, clean=False)
    assert connack.session_present is False
    with server.client() as api:
        r = api.post("/devices/sess-1/messages", json={"data": "hello", "properties": {"k": "v"}})
        assert r.status_code == 202
    first = read_publish(sock)
    assert first.qos == 1 and not first.dup and "k=v" in first.topic
    sock.close()  # never acknowledged

    sock, connack = connect_session(server, "sess-1", key, clean=False)
    assert connack.session_present is True  # [MQTT-3.2.2-2]
    again = read_publish(sock)
    assert again.dup and again.packet_id == first.packet_id and again.payload == b"hello"
    assert again.packet_id is not None
    sock.sendall(encode_packet(PubAck(again.packet_id)))
    time.sleep(0.3)
    sock.close()

    sock, connack = connect_session(server, "sess-1", key, clean=False)
    sock.settimeout(1.0)
    with pytest.raises(TimeoutError):  # settled: nothing comes back
        sock.recv(1)
    sock.close()


def test_overloaded_server_answers_connack_3(server: Server) -> None:
    key = create_device(server, "busy-1")
    server.stop()
    server.env = {"AISLEHUB_MAX_CONNECTIONS": "1"}
    server.start()
    first, _ = connect_session(server, "busy-1", key, clean=True)
    sock = socket.create_connection((server.host, server.plain_port), timeout=5)
    connect = Connect(
        client_id="busy-1",
        username=f"{server.host}/busy-1/?api-version=x",
        password=sas(server, "busy-1", key).encode(),
        clean_session=True,
        keep_alive=30,
    )
    sock.sendall(encode_packet(connect))
    packet, _ = decode_packet(sock.recv(4), 1024)
    assert packet == ConnAck(session_present=False, return_code=3)
    assert closed_by_server(sock)
    sock.close()
    first.close()


def test_silent_connection_is_closed_after_one_and_a_half_keep_alives(server: Server) -> None:
    key = create_device(server, "quiet-1")
    sock = socket.create_connection((server.host, server.plain_port), timeout=5)
    connect = Connect(
        client_id="quiet-1",
        username=f"{server.host}/quiet-1/?api-version=x",
        password=sas(server, "quiet-1", key).encode(),
        clean_session=True,
        keep_alive=1,
    )
    started = time.monotonic()
    sock.sendall(encode_packet(connect))
    assert sock.recv(4) == b"\x20\x02\x00\x00"
    assert closed_by_server(sock)
    assert 1.4 < time.monotonic() - started < 4.0  # [MQTT-3.1.2-24]: 1.5 × keep-alive
    sock.close()


def test_cli_block_disconnects_a_live_device_and_the_history_shows_it(server: Server) -> None:
    key = create_device(server, "cooler-9")
    client, connacks = paho_client(server, "cooler-9", sas(server, "cooler-9", key))
    disconnects: queue.Queue[int] = queue.Queue()
    client.on_disconnect = lambda c, u, rc: disconnects.put(rc)
    try:
        assert connacks.get(timeout=5) == 0
        client.publish("devices/cooler-9/messages/events/", b'{"t": 1}', qos=1).wait_for_publish(5)
        with server.client() as api:
            status = api.get("/devices/cooler-9/connectivity").json()
            assert status["connected"] and status["status"] == "registered"
            assert status["lastActivityAt"] is not None
        block = ["device", "block", "cooler-9", "--data-dir", str(server.data_dir)]
        subprocess.run(aislehub(*block), check=True, capture_output=True, timeout=30)
        disconnects.get(timeout=5)  # another process's write, noticed within a second
        assert connacks.get(timeout=10) == 5
        with server.client() as api:
            status = wait_until(
                lambda: (
                    (s := api.get("/devices/cooler-9/connectivity").json())["lastDisconnectedAt"]
                    and s
                )
            )
            assert status["status"] == "blocked" and not status["connected"]
            kinds = [e["kind"] for e in api.get("/devices/cooler-9/events").json()["value"]]
            assert kinds[:3] == ["disconnected", "disabled", "connected"]
            assert kinds[-1] == "registered"
    finally:
        client.loop_stop()
        client.disconnect()
