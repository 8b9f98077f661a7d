"""One client-side MQTT connection over asyncio streams, using our sans-IO codec.

Resource handling: :meth:`MqttLink.open` returns a connected link; :meth:`MqttLink.close`
closes the socket (idempotent). Error handling: EOF, a reset or a malformed packet from
the server surface as :class:`ConnectionLost`; a refusing CONNACK as
:class:`ConnectRefused`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass

from aislehub.errors import NeedMoreData, ProtocolError
from aislehub.protocol.mqtt import (
    DEFAULT_MAX_REMAINING_LENGTH,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    decode_packet,
    encode_packet,
)
from aislehub.simulator.errors import ConnectionLost, ConnectRefused

RENEW_MARGIN_S = 120  # the SDK renews its SAS token 120 s before expiry (contract §1.2)
PING_AT = 0.75  # ping after 3/4 of the keep-alive idle, well inside the 1.5x the hub allows
READ_CHUNK = 64 * 1024
CONNECT_TIMEOUT_S = 30.0  # TCP + TLS + CONNACK; the SDK's CONNACK watchdog is 60 s


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the hub is. ``hostname`` goes into the username, the SAS resource and TLS
    verification; ``address`` (the SDK's ``gateway_hostname``) only changes what is dialled."""

    hostname: str
    port: int = 8883
    ssl_ctx: ssl.SSLContext | None = None  # None: plain TCP (development listener)
    address: str | None = None


def device_ssl_context(ca_pem: str) -> ssl.SSLContext:
    """Trust only the install's CA and speak TLS 1.2 only, as the SDK does (contract §1):
    a server that cannot do TLS 1.2 fails here just as it would for a real device."""
    ctx = ssl.create_default_context(cadata=ca_pem)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class MqttLink:
    """Packets out (:meth:`send`), packets in (:meth:`receive`) on one socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._buffer = bytearray()
        self.last_sent = time.monotonic()
        self.pong = asyncio.Event()  # set by whoever reads the link when PINGRESP arrives
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(
        cls, address: str, port: int, ssl_ctx: ssl.SSLContext | None, server_hostname: str
    ) -> MqttLink:
        """TCP (and TLS, verifying ``server_hostname``) to ``address:port``."""
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(
                address,
                port,
                ssl=ssl_ctx,
                server_hostname=server_hostname if ssl_ctx is not None else None,
            )
        return cls(reader, writer)

    async def handshake(self, connect: Connect) -> ConnAck:
        """Send CONNECT and wait for CONNACK; raises ConnectRefused for a non-zero code."""
        await self.send(connect)
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            packet = await self.receive()
        if not isinstance(packet, ConnAck):
            raise ConnectionLost(f"expected CONNACK, got {type(packet).__name__}")
        if packet.return_code != 0:
            raise ConnectRefused(packet.return_code)
        return packet

    async def send(self, packet: Packet) -> None:
        """Write one packet; each ``write`` is whole, so concurrent senders never interleave."""
        if self._writer.is_closing():
            raise ConnectionLost("connection is closed")
        self._writer.write(encode_packet(packet))
        self.last_sent = time.monotonic()
        await self._writer.drain()

    async def receive(self) -> Packet:
        """The next packet from the server."""
        while True:
            try:
                packet, used = decode_packet(self._buffer, DEFAULT_MAX_REMAINING_LENGTH)
            except NeedMoreData:
                pass  # fill outside the handler: its traceback pins a view of the buffer
            except ProtocolError as exc:
                raise ConnectionLost(f"server sent a bad packet: {exc}") from exc
            else:
                del self._buffer[:used]
                return packet
            await self._fill()

    async def _fill(self) -> None:
        data = await self._reader.read(READ_CHUNK)
        if not data:
            raise ConnectionLost("server closed the connection")
        self._buffer += data

    async def close(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
            async with asyncio.timeout(2):
                await self._writer.wait_closed()


async def keep_alive(link: MqttLink, seconds: int) -> None:
    """PINGREQ whenever the link has been idle for most of ``seconds`` [MQTT-3.1.2-23];
    raises ConnectionLost when no PINGRESP comes back within ``seconds``."""
    period = seconds * PING_AT
    while True:
        idle = time.monotonic() - link.last_sent
        if idle < period:
            await asyncio.sleep(period - idle)
            continue
        link.pong.clear()
        await link.send(PingReq())
        try:
            async with asyncio.timeout(seconds):
                await link.pong.wait()
        except TimeoutError:
            raise ConnectionLost(f"no PINGRESP within {seconds} s") from None


async def renew_before_expiry(link: MqttLink, token_ttl: int) -> None:
    """DISCONNECT shortly before the SAS token expires, as the SDK does (contract §1.2);
    raises ConnectionLost so that the owner reconnects with a fresh token."""
    await asyncio.sleep(max(token_ttl / 2, token_ttl - RENEW_MARGIN_S))
    with contextlib.suppress(ConnectionLost, OSError):
        await link.send(Disconnect())
    raise ConnectionLost("renewing the SAS token")
