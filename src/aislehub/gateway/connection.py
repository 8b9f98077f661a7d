"""One device connection: moves bytes between a socket and the sans-IO MQTT session.

The connection turns session events into hub calls and never blocks: telemetry is appended
to the ingest log and its PUBACK is written when the log's group commit has fsynced it.
Resource handling: a connection that does not CONNECT within ``CONNECT_TIMEOUT`` or stays
silent past 1.5 × its keep-alive is closed by the gateway's sweeper. Error handling: a
protocol violation, an oversized packet or a topic outside the device's namespace closes
this connection only (logged and counted); every other device keeps flowing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, cast

import orjson

from aislehub.errors import (
    DeviceError,
    PacketTooLarge,
    ProtocolError,
    ServerBusy,
    ServiceUnavailable,
    TopicNotAllowed,
)
from aislehub.gateway.dps_session import DpsHandler
from aislehub.hub import auth
from aislehub.hub.links import Key, OnAck
from aislehub.hub.sessions import SavedSession
from aislehub.hub.twins import twin_document
from aislehub.ingest.log import IngestLog, IngestLogError
from aislehub.ingest.record import TelemetryRecord, encode_record
from aislehub.ingest.subjects import device_subject
from aislehub.protocol import iothub
from aislehub.protocol.mqtt import (
    Connect,
    ConnectReceived,
    DisconnectReceived,
    PubAckReceived,
    Publish,
    PublishReceived,
    ServerSession,
    SubscribeReceived,
    UnsubscribeReceived,
)

if TYPE_CHECKING:
    from aislehub.gateway.context import GatewayContext
    from aislehub.gateway.websocket import WebSocketMqttAdapter

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 30.0  # seconds from TCP accept to CONNECT; IoT Hub's own limit is similar
MAX_PENDING_ACKS = 2000  # telemetry awaiting fsync before we stop reading this socket


class MqttConnection(asyncio.Protocol):
    def __init__(self, ctx: GatewayContext, ws: WebSocketMqttAdapter | None = None) -> None:
        self.ctx = ctx
        self.ws = ws
        self.session = ServerSession(max_remaining_length=ctx.max_remaining_length)
        self.transport: asyncio.Transport | None = None
        self.key: Key | None = None
        self.dps: DpsHandler | None = None
        self.peer = "?"
        self.last_rx = time.monotonic()
        self.keep_alive_timeout: float | None = CONNECT_TIMEOUT
        self._on_ack: dict[int, OnAck] = {}
        self._subscriptions: set[str] = set()
        self._session_saved = False
        self._pending_acks = 0
        self._paused = False
        self._flush_scheduled = False
        self._closed = False
        self._app_id = ""
        self._device_id = ""
        self._module_id: str | None = None
        self._subject: str | None = None  # the ingest log subject of this device's records
        self._log: IngestLog = ctx.log  # its app's cell's log, from CONNECT on

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.peer = str(self.transport.get_extra_info("peername"))
        self.ctx.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.ctx.connections.discard(self)
        if self.key is not None:
            self.save_session()
            self.ctx.hub.disconnected(self.key, self, "connection lost")

    def save_session(self) -> None:
        """Keep a clean_session=0 client's in-flight messages for its next connection."""
        connect = self.session.connect
        if self._session_saved or self.key is None or connect is None or connect.clean_session:
            return
        self._session_saved = True
        inflight = self.session.inflight()
        callbacks = {
            p.packet_id: self._on_ack[p.packet_id] for p in inflight if p.packet_id in self._on_ack
        }
        saved = SavedSession(inflight, callbacks, set(self._subscriptions))
        self.ctx.hub.sessions.save(self.key, saved)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self.last_rx = time.monotonic()
        try:
            if self.ws is not None:
                data = self._unwrap_ws(data)
            for event in self.session.receive_data(data):
                self._handle(event)
        except PacketTooLarge as exc:
            self._fail("mqtt_oversized_total", exc)
        except TopicNotAllowed as exc:
            self._fail("mqtt_topic_refused_total", exc)
        except ProtocolError as exc:
            self._fail("mqtt_protocol_errors_total", exc)
        self._flush()

    def pause_writing(self) -> None:
        # The device does not read what we send (acks, twin replies): stop reading its
        # requests until it does, so one slow device cannot grow our buffers without bound.
        self._paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._paused = False
        self._update_reading()

    def _update_reading(self) -> None:
        if self.transport is None or self._closed:
            return
        if self._paused or self._pending_acks > MAX_PENDING_ACKS:
            self.transport.pause_reading()
        elif self._pending_acks <= MAX_PENDING_ACKS // 2:
            self.transport.resume_reading()

    # -- DeviceLink --------------------------------------------------------------------
    def publish(
        self, topic: str, payload: bytes, qos: int = 1, on_ack: OnAck | None = None
    ) -> None:
        if self._closed:
            return
        packet_id = self.session.send_publish(topic, payload, qos)
        if packet_id is not None and on_ack is not None:
            self._on_ack[packet_id] = on_ack
        self._schedule_flush()

    def last_activity(self) -> float:
        return time.time() - (time.monotonic() - self.last_rx)

    def close(self, reason: str) -> None:
        if self.transport is not None and not self._closed:
            log.info("closing %s (%s): %s", self._device_id or self.peer, self.peer, reason)
            self._flush()
            self._closed = True
            self.transport.close()

    # -- events ------------------------------------------------------------------------
    def _handle(self, event: object) -> None:
        match event:
            case PublishReceived(publish=publish):
                self._on_publish(publish)
            case ConnectReceived(connect=connect):
                self._on_connect(connect)
            case SubscribeReceived(subscribe=sub):
                allowed = [topic for topic, _ in sub.filters if self._may_subscribe(topic)]
                self._subscriptions.update(allowed)
                codes = tuple(min(q, 1) if t in allowed else 0x80 for t, q in sub.filters)
                self.session.ack_subscribe(sub.packet_id, codes)
            case UnsubscribeReceived(unsubscribe=unsub):
                self._subscriptions.difference_update(unsub.filters)
                self.session.ack_unsubscribe(unsub.packet_id)
            case PubAckReceived(packet_id=packet_id):
                callback = self._on_ack.pop(packet_id, None)
                if callback is not None:
                    callback()
            case DisconnectReceived():
                self.close("client sent DISCONNECT")

    def _on_connect(self, connect: Connect) -> None:
        ctx = self.ctx
        try:
            if len(ctx.connections) > ctx.settings.max_connections:
                raise ServerBusy("too many connections; retry later")
            identity = iothub.parse_connect_identity(connect.client_id, connect.username or "")
            if isinstance(identity, iothub.DpsIdentity):
                self._connect_dps(identity, connect)
            else:
                self._connect_hub(identity, connect)
        except DeviceError as exc:
            log.info("CONNECT refused for %r from %s: %s", connect.client_id, self.peer, exc)
            ctx.metrics.inc("mqtt_connect_refused_total", code=str(exc.connack_code))
            self.session.refuse(exc.connack_code)
            self._flush()
            self._closed = True
            if self.transport is not None:
                self.transport.close()

    def _connect_hub(self, identity: iothub.HubIdentity, connect: Connect) -> None:
        ctx = self.ctx
        app = ctx.hub.app_for_host(identity.hostname)
        if app is None:
            raise DeviceError("no application is configured")
        device = auth.authenticate_hub_device(
            ctx.hub.credentials, app, identity.device_id, identity.module_id, connect.password
        )
        self._app_id, self._device_id, self._module_id = app.id, device.id, identity.module_id
        self._subject = device_subject(app.id, device.id, identity.module_id)
        try:
            self._log = ctx.app_log(app.id)
        except ServiceUnavailable as exc:  # its cell's log is down: CONNACK 3, retry later
            raise ServerBusy(str(exc)) from None
        if identity.module_id is None:  # a PnP device names its model (contract §2.5)
            ctx.hub.announce_model(device, identity.model_id)
        self.key = (app.id, device.id, identity.module_id or "")
        self.keep_alive_timeout = self.session.keep_alive_timeout
        previous = ctx.hub.links.get(self.key)
        if isinstance(previous, MqttConnection):
            previous.save_session()  # a takeover: the old link's session moves here now
        saved = ctx.hub.sessions.take(self.key, connect.clean_session)
        early = self.session.accept(session_present=saved is not None)
        if saved is not None:
            self.session.resend(saved.inflight)
            self._on_ack.update(saved.on_ack)
            self._subscriptions = saved.subscriptions
        ctx.metrics.inc("mqtt_connections_total")
        ctx.hub.connected(self.key, self, resumed=saved is not None)
        for event in early:  # packets pipelined behind CONNECT [MQTT-3.1.4-5 allows it]
            self._handle(event)

    def _connect_dps(self, identity: iothub.DpsIdentity, connect: Connect) -> None:
        hub = self.ctx.hub
        app = hub.app_for_scope(identity.id_scope)
        if app is None:
            raise DeviceError(f"unknown ID scope {identity.id_scope!r}")
        group_id = auth.authenticate_registration(
            hub.store, app, identity.registration_id, connect.password
        )
        self.dps = DpsHandler(hub, app, identity.registration_id, group_id, self.publish)
        self.keep_alive_timeout = self.session.keep_alive_timeout
        for event in self.session.accept(session_present=False):
            self._handle(event)

    def _may_subscribe(self, topic_filter: str) -> bool:
        if self.dps is not None:
            return topic_filter.startswith("$dps/registrations/res/")
        return iothub.is_allowed_subscription(topic_filter, self._device_id, self._module_id)

    def _on_publish(self, publish: Publish) -> None:
        if len(publish.payload) > self.ctx.settings.max_message_bytes:
            # IoT Hub's device-to-cloud limit; the SDK enforces it on its side too.
            raise PacketTooLarge(
                f"payload of {len(publish.payload)} bytes exceeds "
                f"{self.ctx.settings.max_message_bytes} bytes"
            )
        if self.dps is not None:
            self.dps.on_publish(publish)
            self._ack_now(publish)
            return
        kind = iothub.parse_device_topic(publish.topic, self._device_id, self._module_id)
        match kind:
            case iothub.TelemetryTopic(properties=properties):
                self._on_telemetry(publish, properties)
            case iothub.TwinGet(rid=rid):
                self._ack_now(publish)
                assert self.key is not None
                doc = orjson.dumps(self._twin_document())
                self.publish(iothub.twin_response_topic(200, rid), doc, qos=0)
            case iothub.TwinPatchReported(rid=rid):
                self._on_reported(publish, rid)
            case iothub.MethodResponse(status=status, rid=rid):
                self._ack_now(publish)
                assert self.key is not None
                self.ctx.hub.methods.on_response(self.key, rid, status, publish.payload)
            case _:
                raise TopicNotAllowed(f"topic {publish.topic!r} is not allowed for this device")

    def _twin_document(self) -> dict[str, Any]:
        assert self.key is not None
        return twin_document(self.ctx.hub.twin(self.key))

    def _on_reported(self, publish: Publish, rid: str) -> None:
        assert self.key is not None
        self._ack_now(publish)
        try:
            patch = orjson.loads(publish.payload)
        except orjson.JSONDecodeError:
            patch = None
        if not isinstance(patch, dict):
            self.ctx.metrics.inc("twin_patch_rejected_total")
            self.publish(iothub.twin_response_topic(400, rid), b"", qos=0)
            return
        version = self.ctx.hub.patch_reported(self.key, patch)
        self.publish(iothub.twin_response_topic(204, rid, version), b"", qos=0)

    def _on_telemetry(self, publish: Publish, properties: dict[str, str]) -> None:
        record = TelemetryRecord(
            self._app_id,
            self._device_id,
            self._module_id,
            int(time.time() * 1000),
            properties,
            publish.payload,
        )
        try:
            future = self._log.append(encode_record(record), self._subject)
        except IngestLogError as exc:
            # Not durable, so never acknowledged: the device resends after reconnecting.
            self.ctx.metrics.inc("ingest_refused_total")
            self.close(f"ingest log unavailable: {exc}")
            return
        self.ctx.metrics.inc("telemetry_received_total")
        if publish.qos == 0 or publish.packet_id is None:
            return
        packet_id = publish.packet_id
        self._pending_acks += 1
        if self._pending_acks > MAX_PENDING_ACKS:
            self._update_reading()
        future.add_done_callback(lambda f: self._ack_durable(f, packet_id))

    def _ack_durable(self, future: asyncio.Future[int], packet_id: int) -> None:
        self._pending_acks -= 1
        if self._closed:
            return
        if future.cancelled() or future.exception() is not None:
            # The log could not make the message durable: never acknowledge it. Dropping
            # the connection makes the device resend after it reconnects.
            reason = "cancelled" if future.cancelled() else str(future.exception())
            self.close(f"ingest log failed: {reason}")
            return
        self.session.ack_publish(packet_id)
        if self._pending_acks == MAX_PENDING_ACKS // 2:
            self._update_reading()
        self._schedule_flush()

    def _ack_now(self, publish: Publish) -> None:
        if publish.qos == 1 and publish.packet_id is not None:
            self.session.ack_publish(publish.packet_id)

    # -- output ------------------------------------------------------------------------
    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self.session.data_to_send()
        if self.ws is not None:
            data = self.ws.send(data) if data else self.ws.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _unwrap_ws(self, data: bytes) -> bytes:
        assert self.ws is not None
        mqtt = self.ws.receive_data(data)
        if self.ws.closed:
            self._flush()
            self.close("websocket closed")
        return mqtt

    def _fail(self, counter: str, exc: Exception) -> None:
        log.warning("dropping %s (%s): %s", self._device_id or "?", self.peer, exc)
        self.ctx.metrics.inc(counter)
        self._flush()
        self._closed = True
        if self.transport is not None:
            self.transport.close()
