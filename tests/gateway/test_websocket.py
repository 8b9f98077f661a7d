"""MQTT over WebSockets: wsproto's client in memory, and paho 1.6.1 over real TCP."""

from __future__ import annotations

import asyncio
import threading

import paho.mqtt.client as paho
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

from aislehub.gateway.websocket import WebSocketMqttAdapter

PINGREQ = b"\xc0\x00"
CONNACK = b"\x20\x02\x00\x00"


class Pair:
    """A wsproto client wired to an adapter in memory."""

    def __init__(self, target: str = "/$iothub/websocket", subprotocols: list[str] | None = None):
        self.client = WSConnection(ConnectionType.CLIENT)
        self.server = WebSocketMqttAdapter()
        request = Request(host="localhost:443", target=target, subprotocols=subprotocols or [])
        assert self.server.receive_data(self.client.send(request)) == b""
        self.events = self.to_client(self.server.data_to_send())

    def to_client(self, data: bytes) -> list[Event]:
        self.client.receive_data(data)
        return list(self.client.events())

    def to_server(self, event: Event) -> bytes:
        return self.server.receive_data(self.client.send(event))


def test_upgrade_selects_mqtt() -> None:
    pair = Pair(subprotocols=["mqtt"])
    assert pair.events == [AcceptConnection(subprotocol="mqtt")]
    assert pair.server.open and not pair.server.closed
    assert pair.server.request is not None and pair.server.request.host == "localhost:443"


def test_upgrade_without_subprotocol_and_with_query() -> None:
    pair = Pair(target="/$iothub/websocket?iothub-no-client-cert=true")
    assert pair.events == [AcceptConnection(subprotocol=None)]


def test_binary_frames_are_a_byte_stream() -> None:
    pair = Pair(subprotocols=["mqtt"])
    first = pair.to_server(BytesMessage(data=b"\x10\x0c", message_finished=False))
    rest = pair.to_server(BytesMessage(data=b"\x00\x04MQTT\x04\xc0\x00\x3c\x00\x00"))
    assert first + rest == b"\x10\x0c\x00\x04MQTT\x04\xc0\x00\x3c\x00\x00"


def test_split_at_every_byte() -> None:
    pair = Pair(subprotocols=["mqtt"])
    wire = pair.client.send(BytesMessage(data=PINGREQ * 100))
    received = b"".join(pair.server.receive_data(wire[i : i + 1]) for i in range(len(wire)))
    assert received == PINGREQ * 100


def test_send_is_an_unmasked_binary_frame() -> None:
    pair = Pair(subprotocols=["mqtt"])
    frame = pair.server.send(CONNACK)
    assert frame == b"\x82\x04" + CONNACK  # FIN + binary, no mask bit (RFC 6455 §5.2)
    assert pair.to_client(frame) == [BytesMessage(data=CONNACK)]


def test_ping_gets_pong() -> None:
    pair = Pair()
    assert pair.to_server(Ping(payload=b"hi")) == b""
    assert pair.to_client(pair.server.data_to_send()) == [Pong(payload=b"hi")]


def test_client_close_is_echoed() -> None:
    pair = Pair()
    assert pair.to_server(CloseConnection(code=1000, reason="bye")) == b""
    assert pair.server.closed and not pair.server.open
    assert pair.to_client(pair.server.data_to_send()) == [CloseConnection(1000, "bye")]
    assert pair.server.send(CONNACK) == b""  # dropped after close
    assert pair.server.receive_data(b"\x82\x00") == b""


def test_text_frame_closes_1003() -> None:
    pair = Pair()
    wire = pair.client.send(TextMessage(data="hello")) + pair.client.send(BytesMessage(b"x"))
    assert pair.server.receive_data(wire) == b""
    assert pair.server.closed
    [event] = pair.to_client(pair.server.data_to_send())
    assert isinstance(event, CloseConnection) and event.code == 1003


def test_unmasked_client_frame_is_a_protocol_error() -> None:
    pair = Pair()
    assert pair.server.receive_data(b"\x82\x02\xc0\x00") == b""  # RFC 6455 §5.1
    assert pair.server.closed
    [event] = pair.to_client(pair.server.data_to_send())
    assert isinstance(event, CloseConnection) and event.code == 1002


def test_server_close() -> None:
    pair = Pair()
    [event] = pair.to_client(pair.server.close(1001))
    assert isinstance(event, CloseConnection) and event.code == 1001
    assert pair.server.closed


def test_eof() -> None:
    pair = Pair()
    assert pair.server.receive_data(b"") == b""
    assert pair.server.closed


def test_eof_during_handshake() -> None:
    server = WebSocketMqttAdapter()
    assert server.receive_data(b"GET /$iothub/websocket HTTP/1.1\r\n") == b""
    assert server.receive_data(b"") == b""
    assert server.closed and server.send(CONNACK) == b""


def test_wrong_path_is_404() -> None:
    pair = Pair(target="/mqtt")
    [reply, *_] = pair.events
    assert isinstance(reply, RejectConnection) and reply.status_code == 404
    assert pair.server.closed and not pair.server.open


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /$iothub/websocket HTTP/1.1\r\nHost: localhost\r\n\r\n",  # no upgrade
        b"POST /$iothub/websocket HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # a TLS ClientHello on the plain port
        b"GET /$iothub/websocket HTTP/1.1\r\nHost: \xff\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n",  # a Host that is not IDNA
    ],
)
def test_bad_requests_are_400(request_bytes: bytes) -> None:
    server = WebSocketMqttAdapter()
    assert server.receive_data(request_bytes) == b""
    assert server.closed
    assert server.data_to_send().startswith(b"HTTP/1.1 400 ")


def test_send_before_handshake_is_our_bug() -> None:
    with pytest.raises(LocalProtocolError):
        WebSocketMqttAdapter().send(CONNACK)


# --- a real client: paho 1.6.1, as the SDK drives it (contract §1, websockets row) ----------


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Run the adapter on one TCP connection and answer the first CONNECT with a CONNACK."""
    adapter = WebSocketMqttAdapter()
    mqtt = bytearray()
    while not adapter.closed:
        mqtt += adapter.receive_data(await reader.read(4096))
        writer.write(adapter.data_to_send())
        if mqtt[:1] == b"\x10" and len(mqtt) >= 2 + mqtt[1]:  # a whole short CONNECT
            assert b"cooler-1" in mqtt
            writer.write(adapter.send(CONNACK))
            mqtt.clear()
        await writer.drain()
    writer.close()


def test_paho_connects_over_websockets() -> None:
    connected = threading.Event()
    codes: list[int] = []

    def on_connect(client: paho.Client, userdata: object, flags: object, rc: int) -> None:
        codes.append(rc)
        connected.set()

    async def run() -> None:
        server = await asyncio.start_server(_serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = paho.Client(client_id="cooler-1", clean_session=False, transport="websockets")
        client.ws_set_options(path="/$iothub/websocket")
        client.on_connect = on_connect
        client.connect_async("127.0.0.1", port, keepalive=60)
        client.loop_start()
        try:
            assert await asyncio.to_thread(connected.wait, 5)
        finally:
            client.disconnect()
            client.loop_stop()
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(run(), 10))
    assert codes == [0]
