"""Device provisioning over MQTT, as the SDK's ProvisioningDeviceClient does it (contract §3).

Flow on one short-lived connection: CONNECT with the DPS username and a SAS token over
``{idScope}/registrations/{registrationId}``; SUBSCRIBE ``$dps/registrations/res/#``;
PUBLISH the register request; while the status is ``assigning``, wait ``retry-after``
seconds and poll the operation; on ``assigned`` return the hub and device id, then
DISCONNECT.

Error handling: status 300-428 raises :class:`RequestFailed` (no retry, as the SDK);
429 and above retry the same request after ``retry-after``; ``failed`` or an unknown
status raises :class:`ProvisioningFailed`; the whole flow is bounded by ``deadline_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aislehub.protocol.iothub import decode_property_bag
from aislehub.protocol.mqtt import Connect, Disconnect, PubAck, Publish, SubAck, Subscribe
from aislehub.protocol.sas import generate_sas_token
from aislehub.simulator.errors import ConnectionLost, ProvisioningFailed, RequestFailed
from aislehub.simulator.transport import MqttLink

DPS_API_VERSION = "2019-03-31"
RESPONSES = "$dps/registrations/res/#"
_RESPONSE_PREFIX = "$dps/registrations/res/"
DEFAULT_RETRY_AFTER_S = 2.0  # what the SDK waits when the hub names no retry-after
TOKEN_TTL_S = 3600


@dataclass(frozen=True, slots=True)
class DpsReply:
    """``$dps/registrations/res/{status}/?$rid={rid}[&retry-after={n}]`` and its body."""

    status: int
    rid: str
    retry_after: float
    payload: bytes

    def document(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.payload)
        except ValueError as exc:
            raise ProvisioningFailed(f"DPS body is not JSON: {self.payload[:200]!r}") from exc
        if not isinstance(doc, dict):
            raise ProvisioningFailed(f"DPS body is not an object: {doc!r}")
        return doc


def dps_username(id_scope: str, registration_id: str) -> str:
    """No ``?``: the query follows the last ``/`` directly (contract §3)."""
    return f"{id_scope}/registrations/{registration_id}/api-version={DPS_API_VERSION}"


def register_topic(rid: str) -> str:
    return f"$dps/registrations/PUT/iotdps-register/?$rid={rid}"


def poll_topic(rid: str, operation_id: str) -> str:
    return (
        f"$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}"
        f"&operationId={quote(operation_id, safe='')}"
    )


def register_body(registration_id: str, model_id: str | None) -> bytes:
    """``{"payload": …, "registrationId": …}``, keys sorted, payload always present."""
    payload = {"modelId": model_id} if model_id else None
    return json.dumps(
        {"payload": payload, "registrationId": registration_id}, sort_keys=True
    ).encode()


def parse_reply_topic(topic: str) -> tuple[int, str, float] | None:
    """``(status, rid, retry_after)`` of a DPS response topic, None for any other topic."""
    if not topic.startswith(_RESPONSE_PREFIX):
        return None
    status, _, rest = topic[len(_RESPONSE_PREFIX) :].partition("/")
    query = decode_property_bag(rest[1:]) if rest.startswith("?") else {}
    try:
        retry = float(query.get("retry-after", DEFAULT_RETRY_AFTER_S))
        return int(status), query.get("$rid", ""), retry
    except ValueError:
        return None


async def provision(
    host: str,
    port: int,
    id_scope: str,
    registration_id: str,
    key: str,
    ssl_ctx: ssl.SSLContext | None,
    model_id: str | None = None,
    *,
    address: str | None = None,
    deadline_s: float = 60.0,
) -> tuple[str, str]:
    """Register ``registration_id`` (signing with ``key``); returns (assigned hub, device id).

    ``host`` is the provisioning host: TLS verification and SNI. ``address``, when given,
    is what is dialled instead.
    """
    link = await MqttLink.open(address or host, port, ssl_ctx, host)
    try:
        async with asyncio.timeout(deadline_s):
            await link.handshake(_connect_packet(id_scope, registration_id, key))
            session = _DpsSession(link)
            await session.subscribe()
            state = await session.register(registration_id, model_id)
        with contextlib.suppress(ConnectionLost, OSError):
            await link.send(Disconnect())
    finally:
        await link.close()
    return _assignment(state)


def _connect_packet(id_scope: str, registration_id: str, key: str) -> Connect:
    resource = f"{id_scope}/registrations/{registration_id}"
    token = generate_sas_token(resource, key, int(time.time()) + TOKEN_TTL_S)
    return Connect(
        client_id=registration_id,
        username=dps_username(id_scope, registration_id),
        password=token.encode(),
        clean_session=False,
        keep_alive=60,
    )


def _assignment(state: dict[str, Any]) -> tuple[str, str]:
    hub, device_id = state.get("assignedHub"), state.get("deviceId")
    if not isinstance(hub, str) or not isinstance(device_id, str):
        raise ProvisioningFailed(f"registrationState lacks assignedHub/deviceId: {state!r}")
    return hub, device_id


class _DpsSession:
    """The request/response exchanges on one DPS connection, strictly one at a time."""

    def __init__(self, link: MqttLink) -> None:
        self._link = link
        self._ids = itertools.count(1)  # packet identifiers; one connection never wraps
        self._rids = itertools.count(1)

    async def subscribe(self) -> None:
        packet_id = next(self._ids)
        await self._link.send(Subscribe(packet_id, ((RESPONSES, 1),)))
        while not isinstance(packet := await self._link.receive(), SubAck):
            if isinstance(packet, Publish):
                await self._ack(packet)

    async def register(self, registration_id: str, model_id: str | None) -> dict[str, Any]:
        reply = await self._exchange(register_topic, register_body(registration_id, model_id))
        doc = reply.document()
        while (status := doc.get("status")) == "assigning":
            operation_id = str(doc.get("operationId", ""))
            await asyncio.sleep(reply.retry_after)
            poll = functools.partial(poll_topic, operation_id=operation_id)
            reply = await self._exchange(poll, b" ")
            doc = reply.document()
        if status != "assigned":
            raise ProvisioningFailed(f"registration {registration_id!r} ended {status!r}: {doc}")
        state = doc.get("registrationState")
        return state if isinstance(state, dict) else {}

    async def _exchange(self, topic_for: Callable[[str], str], body: bytes) -> DpsReply:
        """One request, retried on 429+ after ``retry-after``; raises for 300-428."""
        while True:
            rid = str(next(self._rids))
            reply = await self._round_trip(rid, topic_for(rid), body)
            if reply.status < 300:
                return reply
            if reply.status < 429:
                raise RequestFailed(reply.status, reply.payload)
            await asyncio.sleep(reply.retry_after)

    async def _round_trip(self, rid: str, topic: str, body: bytes) -> DpsReply:
        await self._link.send(Publish(topic, body, qos=1, packet_id=next(self._ids)))
        while True:
            packet = await self._link.receive()
            if not isinstance(packet, Publish):
                continue  # our PUBACK, or nothing we need
            await self._ack(packet)
            parsed = parse_reply_topic(packet.topic)
            if parsed is not None and parsed[1] == rid:
                return DpsReply(parsed[0], rid, parsed[2], packet.payload)

    async def _ack(self, packet: Publish) -> None:
        if packet.qos == 1 and packet.packet_id is not None:
            await self._link.send(PubAck(packet.packet_id))
