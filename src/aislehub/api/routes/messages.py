"""``POST /devices/{deviceId}/messages``: cloud-to-device messages (aislehub extension).

IoT Hub's service API has C2D; IoT Central's does not. Body ``{"data", "properties",
"ttlSeconds"}``: a string ``data`` is sent as its UTF-8 bytes, anything else as JSON with
``$.ct=application/json`` and ``$.ce=utf-8`` (the SDK exposes them as ``content_type`` and
``content_encoding``). The message is queued and delivered now or when the device connects;
the answer is 202 with its sequence number.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from fastapi import APIRouter

from aislehub.api.deps import CallerDep, DeviceId
from aislehub.api.models import MessageBody
from aislehub.errors import BadRequest
from aislehub.hub.hub import C2D_DEFAULT_TTL

Json = dict[str, Any]

# IoT Hub's cloud-to-device message size limit.
MAX_C2D_BYTES = 64 * 1024

router = APIRouter(tags=["Device messages"])


@router.post(
    "/devices/{deviceId}/messages",
    status_code=202,
    summary="Send a cloud-to-device message (aislehub extension)",
)
async def send_message(device_id: DeviceId, body: MessageBody, caller: CallerDep) -> Json:
    caller.device(device_id)
    payload, properties = encode_message(body)
    ttl = timedelta(seconds=body.ttl_seconds) if body.ttl_seconds else C2D_DEFAULT_TTL
    seq = caller.ctx.hub.send_c2d(caller.key(device_id), payload, properties, ttl)
    return {"id": seq}


def encode_message(body: MessageBody) -> tuple[bytes, dict[str, str]]:
    if isinstance(body.data, str):
        payload, system = body.data.encode("utf-8"), {}
    else:
        try:
            payload = orjson.dumps(body.data)
        except orjson.JSONEncodeError as exc:  # e.g. an integer beyond 64 bits
            raise BadRequest(f"'data' cannot be sent as JSON: {exc}.") from None
        system = {"$.ct": "application/json", "$.ce": "utf-8"}
    if len(payload) > MAX_C2D_BYTES:
        raise BadRequest(
            f"The message is {len(payload)} bytes; IoT Hub's limit is {MAX_C2D_BYTES} bytes."
        )
    return payload, {**system, **body.properties}
