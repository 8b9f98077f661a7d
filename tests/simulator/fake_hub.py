"""A tiny in-process IoT Hub + DPS built on our sans-IO ServerSession, for client tests.

It speaks plain TCP on 127.0.0.1, accepts any credentials (tests check them separately),
records what devices send and can drop connections, hold PUBACKs, call methods and
push desired patches, so the client's reconnect and resend paths can be driven exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aislehub.protocol import dps, iothub
from aislehub.protocol.mqtt import (
    Connect,
    ConnectReceived,
    DisconnectReceived,
    Event,
    Publish,
    PublishReceived,
    ServerSession,
    SubscribeReceived,
)


@dataclass
class _Conn:
    session: ServerSession
    writer: asyncio.StreamWriter
    identity: iothub.HubIdentity | iothub.DpsIdentity | None = None

    def flush(self) -> None:
        data = self.session.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)


@dataclass
class FakeHub:
    connack_code: int = 0
    hold_acks: bool = False  # when set, telemetry is recorded but not acknowledged
    dps_throttle_once: bool = False  # answer the first DPS register with 429
    connects: list[Connect] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)
    telemetry: list[Publish] = field(default_factory=list)
    reported: list[dict[str, Any]] = field(default_factory=list)
    dps_requests: list[str] = field(default_factory=list)
    twin: dict[str, Any] = field(
        default_factory=lambda: {"desired": {"$version": 1}, "reported": {"$version": 1}}
    )
    _conns: list[_Conn] = field(default_factory=list)
    _method_replies: dict[str, asyncio.Future[tuple[int, bytes]]] = field(default_factory=dict)
    _server: asyncio.Server | None = None
    port: int = 0

    async def __aenter__(self) -> FakeHub:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.drop_all()
        await self._server.wait_closed()

    # -- test controls ---------------------------------------------------------------------

    def drop_all(self) -> None:
        for conn in self._conns:
            conn.writer.close()
        self._conns.clear()

    def packets_received(self) -> int:
        return sum(c.session.packets_received for c in self._conns)

    def hub_conn(self) -> _Conn:
        return next(c for c in self._conns if isinstance(c.identity, iothub.HubIdentity))

    async def call_method(
        self, name: str, payload: Any, rid: str, copies: int = 1
    ) -> tuple[int, Any]:
        reply = asyncio.get_running_loop().create_future()
        self._method_replies[rid] = reply
        conn = self.hub_conn()
        for _ in range(copies):  # copies > 1: as if redelivered after a reconnect
            conn.session.send_publish(
                iothub.method_request_topic(name, rid), json.dumps(payload).encode(), qos=1
            )
        conn.flush()
        status, body = await asyncio.wait_for(reply, 5)
        return status, json.loads(body)

    def push_desired(self, patch: dict[str, Any], version: int) -> None:
        conn = self.hub_conn()
        body = json.dumps({**patch, "$version": version}).encode()
        conn.session.send_publish(iothub.desired_patch_topic(version), body, qos=1)
        conn.flush()

    def push_c2d(self, payload: bytes, props: dict[str, str]) -> None:
        conn = self.hub_conn()
        assert isinstance(conn.identity, iothub.HubIdentity)
        conn.session.send_publish(iothub.c2d_topic(conn.identity.device_id, props), payload, 1)
        conn.flush()

    # -- the connection --------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(ServerSession(), writer)
        self._conns.append(conn)
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                self._handle_all(conn, conn.session.receive_data(data))
                conn.flush()
        writer.close()

    def _handle_all(self, conn: _Conn, events: list[Event]) -> None:
        for event in events:
            match event:
                case ConnectReceived(connect=connect):
                    self._handle_all(conn, self._on_connect(conn, connect))
                case SubscribeReceived(subscribe=sub):
                    self.subscriptions += [f for f, _ in sub.filters]
                    conn.session.ack_subscribe(sub.packet_id, [1] * len(sub.filters))
                case PublishReceived(publish=publish):
                    self._on_publish(conn, publish)
                case DisconnectReceived():
                    conn.writer.close()

    def _on_connect(self, conn: _Conn, connect: Connect) -> list[Event]:
        self.connects.append(connect)
        if self.connack_code:
            conn.session.refuse(self.connack_code)
            return []
        conn.identity = iothub.parse_connect_identity(connect.client_id, connect.username or "")
        return conn.session.accept(session_present=False)

    def _on_publish(self, conn: _Conn, publish: Publish) -> None:
        if isinstance(conn.identity, iothub.DpsIdentity):
            self._ack(conn, publish)
            self._on_dps(conn, conn.identity, publish)
            return
        assert isinstance(conn.identity, iothub.HubIdentity)
        kind = iothub.parse_device_topic(publish.topic, conn.identity.device_id, None)
        if isinstance(kind, iothub.TelemetryTopic):
            self.telemetry.append(publish)
            if not self.hold_acks:
                self._ack(conn, publish)
            return
        self._ack(conn, publish)
        self._on_twin_or_method(conn, kind, publish.payload)

    def _on_twin_or_method(self, conn: _Conn, kind: iothub.DeviceTopic, body: bytes) -> None:
        session = conn.session
        match kind:
            case iothub.TwinGet(rid=rid):
                session.send_publish(
                    iothub.twin_response_topic(200, rid), json.dumps(self.twin).encode()
                )
            case iothub.TwinPatchReported(rid=rid):
                self.reported.append(json.loads(body))
                version = len(self.reported) + 1
                session.send_publish(iothub.twin_response_topic(204, rid, version), b"")
            case iothub.MethodResponse(status=status, rid=rid):
                reply = self._method_replies.pop(rid, None)
                if reply is not None:
                    reply.set_result((status, body))

    def _on_dps(self, conn: _Conn, who: iothub.DpsIdentity, publish: Publish) -> None:
        request = dps.parse_dps_topic(publish.topic)
        self.dps_requests.append(publish.topic)
        if isinstance(request, dps.DpsRegister) and self.dps_throttle_once:
            self.dps_throttle_once = False
            topic, body = dps.response_topic(429, request.rid, retry_after=0), b"{}"
        elif isinstance(request, dps.DpsRegister):
            topic = dps.response_topic(202, request.rid, retry_after=0)
            body = dps.assigning_body("op-1")
        else:
            now = datetime.now(UTC)
            state = dps.RegistrationState(
                who.registration_id, who.registration_id, "hub.example", now, now, "etag"
            )
            topic = dps.response_topic(200, request.rid)
            body = dps.assigned_body(request.operation_id, state)
        conn.session.send_publish(topic, body)

    @staticmethod
    def _ack(conn: _Conn, publish: Publish) -> None:
        if publish.qos == 1 and publish.packet_id is not None:
            conn.session.ack_publish(publish.packet_id)

    def ack_held(self) -> None:
        """Stop holding PUBACKs (for the following connections)."""
        self.hold_acks = False


async def wait_for(predicate: Any, within: float = 5.0) -> None:
    """Poll ``predicate`` (plain state, no event to wait on) until true or ``within`` s."""
    async with asyncio.timeout(within):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)
