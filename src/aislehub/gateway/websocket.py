"""MQTT over WebSockets, as the SDK speaks it with ``websockets=True`` (contract §1).

The SDK (through paho 1.6.1) sends ``GET /$iothub/websocket`` with subprotocol ``mqtt``
and accepts the upgrade when the reply has ``Connection: Upgrade`` and a correct
``Sec-WebSocket-Accept``. Then MQTT travels as a byte stream cut into binary frames
(MQTT 3.1.1 §6; client frames masked, server frames not, RFC 6455 §5.1).

:class:`WebSocketMqttAdapter` is sans-IO on top of wsproto, in h11's shape: the gateway
feeds socket bytes to :meth:`~WebSocketMqttAdapter.receive_data` and gets MQTT bytes back,
wraps outgoing MQTT with :meth:`~WebSocketMqttAdapter.send`, and writes whatever
:meth:`~WebSocketMqttAdapter.data_to_send` holds (handshake replies, pongs, close frames).
When :attr:`~WebSocketMqttAdapter.closed` turns true, it flushes and closes the socket.
"""

from __future__ import annotations

from contextlib import suppress

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

IOTHUB_WEBSOCKET_PATH = "/$iothub/websocket"
SUBPROTOCOL = "mqtt"


class WebSocketMqttAdapter:
    """One server-side WebSocket connection that carries MQTT."""

    def __init__(self, path: str = IOTHUB_WEBSOCKET_PATH) -> None:
        self._path = path
        self._ws = WSConnection(ConnectionType.SERVER)
        self._outbox = bytearray()
        self._closed = False
        self.request: Request | None = None  # the upgrade request, once received

    @property
    def open(self) -> bool:
        """The handshake is done and MQTT may flow."""
        return not self._closed and self._ws.state is ConnectionState.OPEN

    @property
    def closed(self) -> bool:
        """Nothing more will flow: flush :meth:`data_to_send`, then close the socket."""
        return self._closed

    def data_to_send(self) -> bytes:
        """Bytes due to the peer, in order; the outbox is emptied."""
        data = bytes(self._outbox)
        self._outbox.clear()
        return data

    def receive_data(self, data: bytes) -> bytes:
        """Feed socket bytes; returns the MQTT bytes they carried (maybe ``b""``).

        ``b""`` means end of stream, as in h11. Bytes after :attr:`closed` are ignored.
        """
        if self._closed:
            return b""
        if not data:
            self._closed = True
            return b""
        try:
            self._ws.receive_data(data)
        except (RemoteProtocolError, UnicodeError) as exc:
            # A bad upgrade request (wsproto validates it, RFC 6455 §4.2.1), e.g. a plain
            # GET or a non-ASCII Host; wsproto suggests the HTTP reply (400 or 426).
            hint = getattr(exc, "event_hint", None)
            self._reject(hint if isinstance(hint, RejectConnection) else RejectConnection())
            return b""
        return self._handle_events()

    def send(self, mqtt: bytes) -> bytes:
        """Wrap MQTT bytes in one binary frame; returns it after any pending bytes.

        After :attr:`closed` (or once a close handshake began) the bytes are dropped.
        """
        if self._closed:
            return self.data_to_send()
        if self._ws.state is ConnectionState.CONNECTING:
            raise LocalProtocolError("cannot send MQTT before the WebSocket handshake")
        if self.open:
            self._outbox += self._ws.send(BytesMessage(data=mqtt))
        return self.data_to_send()

    def close(self, code: int = CloseReason.NORMAL_CLOSURE, reason: str | None = None) -> bytes:
        """Start the close handshake (RFC 6455 §7.1.2); returns the bytes to flush."""
        self._start_close(code, reason)
        return self.data_to_send()

    def _start_close(self, code: int, reason: str | None) -> None:
        if self.open:
            self._outbox += self._ws.send(CloseConnection(code=code, reason=reason))
        self._closed = True

    # --- events ----------------------------------------------------------------------------

    def _handle_events(self) -> bytes:
        mqtt = bytearray()
        for event in self._ws.events():
            if self._closed:
                break  # anything after a close or a rejection is ignored
            if isinstance(event, BytesMessage):
                mqtt += event.data
            else:
                self._handle_control(event)
        return bytes(mqtt)

    def _handle_control(self, event: Event) -> None:
        if isinstance(event, Request):
            self._on_request(event)
        elif isinstance(event, Ping):
            self._outbox += self._ws.send(event.response())  # RFC 6455 §5.5.2
        elif isinstance(event, TextMessage):
            # MQTT 3.1.1 §6.0 [MQTT-6.0.0-1]: only binary frames carry MQTT.
            self._start_close(CloseReason.UNSUPPORTED_DATA, "MQTT needs binary frames")
        elif isinstance(event, CloseConnection):
            self._on_close(event)

    def _on_request(self, request: Request) -> None:
        self.request = request
        if request.target.partition("?")[0] != self._path:
            self._reject(RejectConnection(status_code=404))
            return
        # MQTT 3.1.1 §6.0 [MQTT-6.0.0-4]: the selected subprotocol is "mqtt". paho does not
        # check it, so a client that offers none is still served.
        offered = SUBPROTOCOL in request.subprotocols
        accept = AcceptConnection(subprotocol=SUBPROTOCOL if offered else None)
        self._outbox += self._ws.send(accept)

    def _on_close(self, event: CloseConnection) -> None:
        # A peer close (REMOTE_CLOSING) must be echoed (RFC 6455 §5.5.1). wsproto also reports
        # broken frames as a CloseConnection while OPEN (code 1002/1007/1009): answer likewise.
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self._outbox += self._ws.send(event.response())
        self._closed = True

    def _reject(self, reply: RejectConnection) -> None:
        headers = [*reply.headers, (b"Connection", b"close")]
        with suppress(LocalProtocolError):  # h11 may be unable to answer; then just close
            self._outbox += self._ws.send(RejectConnection(reply.status_code, headers))
        self._closed = True
