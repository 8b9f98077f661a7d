"""DeviceClient: one simulated device speaking the IoT Hub MQTT dialect with our codec.

It behaves like the official SDK on the wire (contract §1-2): QoS 1 for every PUBLISH and
SUBSCRIBE, a SAS-token password, ``$rid``-correlated twin requests, method replies on
``$iothub/methods/res/{status}``. Unlike the SDK it re-subscribes after every reconnect.

Resource handling: ``async with DeviceClient(...) as client`` connects (retrying transient
failures) and returns once subscribed; leaving the block sends DISCONNECT and cancels
every task the client owns. All of them live in one TaskGroup: the connection supervisor
(which runs the reader, the keep-alive and the SAS renewal of each connection in a nested
group) and one task per incoming method call, desired patch or C2D message.

Error handling: a dropped connection, a refused CONNACK with code 3, or a socket or TLS
error reconnects after an exponential back-off with jitter; publishes in flight are
resent on the new connection. CONNACK 4/5 (bad credentials) ends the client with
:class:`ConnectRefused`, as the SDK stops retrying then. A handler that raises is logged
and, for a method, answered with status 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from aislehub.protocol.mqtt import (
    Connect,
    Disconnect,
    Packet,
    PingResp,
    PubAck,
    Publish,
    SubAck,
    Subscribe,
)
from aislehub.protocol.sas import generate_sas_token
from aislehub.simulator import topics
from aislehub.simulator.errors import ConnectionLost, ConnectRefused, RequestFailed
from aislehub.simulator.handlers import (
    CloudMessage,
    Handlers,
    apply_desired,
    call_method,
    deliver_c2d,
)
from aislehub.simulator.inflight import Outbox, Outgoing, PacketIds
from aislehub.simulator.transport import Endpoint, MqttLink, keep_alive, renew_before_expiry

log = logging.getLogger(__name__)

TRANSIENT = (ConnectionLost, OSError)  # ssl.SSLError and TimeoutError are OSErrors
SUBACK_TIMEOUT_S = 10.0  # the SDK's SUBACK timeout (contract §1)
# Method requests the hub may redeliver with DUP after a reconnect; a few dozen covers the
# ones that can be in flight to one device (the hub times each out after 30 s by default).
RECENT_METHOD_RIDS = 64


@dataclass(frozen=True, slots=True)
class Reply:
    """A twin response: status, ``$version`` when the hub sent one, and the body."""

    status: int
    version: int | None
    payload: bytes


def backoff_delay(attempt: int, rng: random.Random, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential back-off with "equal jitter": half fixed, half random, capped."""
    ceiling = min(cap, base * 2.0 ** min(attempt, 16))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class DeviceClient:
    """One device connection to the hub, kept alive until the ``async with`` block ends."""

    def __init__(
        self,
        endpoint: Endpoint,
        device_id: str,
        key: str,
        *,
        model_id: str | None = None,
        handlers: Handlers | None = None,
        keep_alive: int = 60,
        token_ttl: int = 3600,
        request_timeout: float = 30.0,
        max_in_flight: int = 256,
        seed: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.device_id = device_id
        self.model_id = model_id
        self.handlers = handlers or Handlers()
        self.keep_alive = keep_alive
        self.token_ttl = token_ttl
        self.request_timeout = request_timeout
        self.connects = 0  # successful connections so far
        self._key = key
        self._rng = random.Random(seed)
        self._ids = PacketIds()
        self._outbox = Outbox(self._ids)
        self._window = asyncio.Semaphore(max_in_flight)
        self._subacks: dict[int, asyncio.Future[SubAck]] = {}
        self._replies: dict[str, asyncio.Future[Reply]] = {}
        self._method_rids: deque[str] = deque(maxlen=RECENT_METHOD_RIDS)
        self._ready = asyncio.Event()
        self._link: MqttLink | None = None
        self._generation = 0
        self._failures = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._lifetime_cm: contextlib.AbstractAsyncContextManager[DeviceClient] | None = None

    # -- lifetime --------------------------------------------------------------------------

    async def __aenter__(self) -> DeviceClient:
        self._lifetime_cm = self._lifetime()
        return await self._lifetime_cm.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        assert self._lifetime_cm is not None
        return await self._lifetime_cm.__aexit__(*exc_info)

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[DeviceClient]:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            self._spawn(self._supervise(), f"mqtt supervisor {self.device_id}")
            try:
                await self._ready.wait()
                yield self
            finally:
                await self._shutdown()

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        assert self._tg is not None, "use the client inside 'async with'"
        task = self._tg.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shutdown(self) -> None:
        link = self._link
        if link is not None and self._ready.is_set():
            with contextlib.suppress(*TRANSIENT):
                await link.send(Disconnect())
        for task in list(self._tasks):
            task.cancel()
        if link is not None:
            await link.close()

    # -- public requests -------------------------------------------------------------------

    async def send_telemetry(
        self,
        payload: bytes | Mapping[str, Any],
        properties: Mapping[str, str] | None = None,
        component: str | None = None,
    ) -> None:
        """QoS 1 telemetry; returns once the hub has acknowledged it (durably stored)."""
        props = dict(properties or {})
        if not isinstance(payload, bytes):
            payload = json.dumps(payload, separators=(",", ":")).encode()
            props.setdefault("$.ct", "application/json")
            props.setdefault("$.ce", "utf-8")
        if component:
            props["$.sub"] = component  # the PnP component marker (contract §2.2)
        await self._publish(topics.telemetry_topic(self.device_id, props), payload)

    async def get_twin(self) -> dict[str, Any]:
        """The twin document ``{"desired": {...}, "reported": {...}}``."""
        reply = await self._request(topics.twin_get_topic, b" ")  # the SDK's body (§2.2)
        twin: dict[str, Any] = json.loads(reply.payload)
        return twin

    async def patch_reported(self, patch: Mapping[str, Any]) -> int | None:
        """Patch reported properties; returns the new reported ``$version`` if the hub sent it."""
        reply = await self._request(topics.twin_patch_topic, json.dumps(patch).encode())
        return reply.version

    async def _publish(self, topic: str, payload: bytes) -> asyncio.Future[None]:
        """QoS 1 PUBLISH, resent across reconnects until PUBACKed.

        Returns the ``closed`` future of the connection that acknowledged it.
        """
        async with self._window:
            entry = self._outbox.add(topic, payload)
            try:
                link = self._link
                if link is not None and self._ready.is_set():
                    await self._write(link, entry)
                return await entry.acked
            finally:
                self._outbox.remove(entry)

    async def _write(self, link: MqttLink, entry: Outgoing) -> None:
        packet = Publish(
            entry.topic, entry.payload, qos=1, dup=entry.dup, packet_id=entry.packet_id
        )
        entry.sent_on = self._generation
        with contextlib.suppress(*TRANSIENT):  # the next connection resends it
            await link.send(packet)

    async def _request(self, topic_for: Callable[[str], str], payload: bytes) -> Reply:
        """A ``$rid``-correlated twin request, re-sent if its connection dies unanswered."""
        rid = str(uuid.uuid4())
        reply: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._replies[rid] = reply
        try:
            async with asyncio.timeout(self.request_timeout):
                while not reply.done():
                    closed = await self._publish(topic_for(rid), payload)
                    await asyncio.wait((reply, closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._replies.pop(rid, None)
        result = reply.result()
        if result.status >= 300:
            raise RequestFailed(result.status, result.payload)
        return result

    # -- connection supervisor -------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            try:
                await self._serve_once()
            except ConnectRefused as exc:
                if not exc.transient:
                    raise
                log.info("%s: hub busy (%s)", self.device_id, exc)
            except TRANSIENT as exc:
                log.info("%s: disconnected: %s", self.device_id, exc)
            self._failures += 1
            await asyncio.sleep(backoff_delay(self._failures - 1, self._rng))

    async def _serve_once(self) -> None:
        ep = self.endpoint
        link = await MqttLink.open(ep.address or ep.hostname, ep.port, ep.ssl_ctx, ep.hostname)
        try:
            await link.handshake(self._connect_packet())
            self._generation += 1
            self._link = link
            await self._run_link(link)
        finally:
            self._ready.clear()
            self._link = None
            await link.close()

    def _connect_packet(self) -> Connect:
        ep = self.endpoint
        resource = f"{ep.hostname}/devices/{self.device_id}"
        token = generate_sas_token(resource, self._key, int(time.time()) + self.token_ttl)
        return Connect(
            client_id=self.device_id,
            username=topics.hub_username(ep.hostname, self.device_id, self.model_id),
            password=token.encode(),
            clean_session=False,  # as the SDK (contract §1); we re-subscribe regardless
            keep_alive=self.keep_alive,
        )

    async def _run_link(self, link: MqttLink) -> None:
        """Serve one connection until it fails; every failure comes out as ConnectionLost."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._read_loop(link), name=f"mqtt reader {self.device_id}")
                tg.create_task(
                    keep_alive(link, self.keep_alive), name=f"mqtt keep-alive {self.device_id}"
                )
                tg.create_task(
                    renew_before_expiry(link, self.token_ttl), name=f"sas renewal {self.device_id}"
                )
                await self._subscribe(link)
                await self._flush_outbox(link)
                self.connects += 1
                self._failures = 0
        except ExceptionGroup as group:
            transient, other = group.split(TRANSIENT)
            if other is not None:
                raise
            raise ConnectionLost("; ".join(map(str, _leaves(transient)))) from group

    async def _subscribe(self, link: MqttLink) -> None:
        async with asyncio.timeout(SUBACK_TIMEOUT_S):
            acks = await asyncio.gather(
                *(self._subscribe_one(link, f) for f in topics.subscriptions(self.device_id))
            )
        for ack in acks:
            if any(code == 0x80 for code in ack.return_codes):
                log.warning("%s: hub refused subscription %d", self.device_id, ack.packet_id)

    async def _subscribe_one(self, link: MqttLink, topic_filter: str) -> SubAck:
        packet_id = self._ids.allocate()
        waiter: asyncio.Future[SubAck] = asyncio.get_running_loop().create_future()
        self._subacks[packet_id] = waiter
        try:
            await link.send(Subscribe(packet_id, ((topic_filter, 1),)))  # one each, as the SDK
            return await waiter
        finally:
            del self._subacks[packet_id]
            self._ids.release(packet_id)

    async def _flush_outbox(self, link: MqttLink) -> None:
        """Resend what earlier connections did not get acknowledged, then open for business."""
        while pending := self._outbox.unsent(self._generation):
            for entry in pending:
                await self._write(link, entry)
        self._ready.set()

    # -- incoming packets ------------------------------------------------------------------

    async def _read_loop(self, link: MqttLink) -> None:
        while True:
            packet = await link.receive()
            if isinstance(packet, Publish):
                await self._on_publish(link, packet)
            else:
                self._on_control(link, packet)

    def _on_control(self, link: MqttLink, packet: Packet) -> None:
        match packet:
            case PubAck(packet_id=packet_id):
                self._outbox.ack(packet_id, link.closed)
            case SubAck(packet_id=packet_id):
                waiter = self._subacks.get(packet_id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(packet)
            case PingResp():
                link.pong.set()
            case _:
                log.debug("%s: ignoring %s", self.device_id, type(packet).__name__)

    async def _on_publish(self, link: MqttLink, publish: Publish) -> None:
        if publish.qos == 1 and publish.packet_id is not None:
            await link.send(PubAck(publish.packet_id))
        match topics.parse_hub_topic(publish.topic, self.device_id):
            case topics.TwinReply(status=status, rid=rid, version=version):
                waiter = self._replies.get(rid)
                if waiter is not None and not waiter.done():
                    waiter.set_result(Reply(status, version, publish.payload))
            case topics.MethodCall() as call if call.rid not in self._method_rids:
                self._method_rids.append(call.rid)  # a DUP redelivery runs it only once
                self._spawn(
                    self._answer_method(call, publish.payload),
                    f"method {call.name} {self.device_id}",
                )
            case topics.DesiredPatch():
                desired = apply_desired(self.handlers, self.device_id, publish.payload)
                self._spawn(desired, f"desired {self.device_id}")
            case topics.CloudMessage(properties=props):
                message = CloudMessage(publish.payload, props)
                self._spawn(deliver_c2d(self.handlers, message), f"c2d {self.device_id}")
            case None:
                log.warning("%s: unexpected topic %r", self.device_id, publish.topic)

    async def _answer_method(self, call: topics.MethodCall, body: bytes) -> None:
        status, result = await call_method(self.handlers, self.device_id, call.name, body)
        payload = json.dumps(result).encode()
        await self._publish(topics.method_response_topic(status, call.rid), payload)


def _leaves(group: BaseExceptionGroup[BaseException] | None) -> list[BaseException]:
    if group is None:
        return []
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return leaves
