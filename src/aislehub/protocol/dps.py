"""The DPS MQTT dialect: request topics and bodies, response topics and bodies (contract §3).

Flow: the device subscribes ``$dps/registrations/res/#``, PUBLISHes a register request, gets
``202 assigning`` (or ``200 assigned`` at once), then polls until ``assigned`` or ``failed``.

Sans-IO: no clock, no sockets; timestamps and ids come in as arguments. Operation ids and
etags are opaque strings to the device.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aislehub.errors import ProtocolError, TopicNotAllowed
from aislehub.protocol.iothub import decode_property_bag

RESPONSE_FILTER = "$dps/registrations/res/#"
_REGISTER = "$dps/registrations/PUT/iotdps-register/"
_POLL = "$dps/registrations/GET/iotdps-get-operationstatus/"

# DPS error codes are the HTTP status followed by three digits; the status prefixes are
# those of learn.microsoft.com/azure/iot-dps/how-to-troubleshoot-dps. The SDK reads only the
# status in the topic, never the code, so these are informative.
ERROR_BAD_REQUEST = 400004
ERROR_UNAUTHORIZED = 401002
ERROR_THROTTLED = 429001


class BadDpsRequest(ProtocolError):
    """A register body we cannot read; answer ``400`` with :func:`error_body`, keep the link."""

    status = 400
    error_code = ERROR_BAD_REQUEST


# --- device → DPS ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DpsRegister:
    """``$dps/registrations/PUT/iotdps-register/?$rid={rid}``."""

    rid: str


@dataclass(frozen=True, slots=True)
class DpsPoll:
    """``$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={op}``."""

    rid: str
    operation_id: str


@dataclass(frozen=True, slots=True)
class RegisterBody:
    """The register body ``{"payload": …, "registrationId": …}``; payload is any JSON."""

    registration_id: str
    payload: Any


def is_allowed_dps_subscription(topic_filter: str) -> bool:
    """The only filter a DPS client needs (§3 step 1)."""
    return topic_filter == RESPONSE_FILTER


def parse_dps_topic(topic: str) -> DpsRegister | DpsPoll:
    """Classify a DPS client's PUBLISH topic; anything else raises TopicNotAllowed."""
    if topic.startswith(_REGISTER + "?"):
        return DpsRegister(_require(topic, _query(topic, _REGISTER), "$rid"))
    if topic.startswith(_POLL + "?"):
        query = _query(topic, _POLL)
        return DpsPoll(_require(topic, query, "$rid"), _require(topic, query, "operationId"))
    raise TopicNotAllowed(f"topic {topic!r} is not a DPS request")


def _query(topic: str, prefix: str) -> dict[str, str]:
    return decode_property_bag(topic[len(prefix) + 1 :])


def _require(topic: str, query: dict[str, str], key: str) -> str:
    value = query.get(key)
    if not value:
        raise TopicNotAllowed(f"DPS topic {topic!r} lacks {key}")
    return value


def parse_register_body(body: bytes, registration_id: str) -> RegisterBody:
    """Read a register body (§3 step 2); raises BadDpsRequest.

    ``payload`` is optional (other SDKs omit it); ``registrationId``, when present, must be
    the connection's. A blank body counts as ``{}``.
    """
    data = _json_object(body)
    named = data.get("registrationId", registration_id)
    if named != registration_id:
        raise BadDpsRequest(f"registrationId {named!r} differs from {registration_id!r}")
    return RegisterBody(registration_id, data.get("payload"))


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadDpsRequest(f"register body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadDpsRequest("register body is not a JSON object")
    return data


# --- DPS → device ------------------------------------------------------------------------------


def response_topic(status: int, rid: str, retry_after: int | None = None) -> str:
    """``$dps/registrations/res/{status}/?$rid={rid}[&retry-after={n}]``.

    The SDK splits the topic on ``$`` and reads piece 3 as the query
    (``extract_properties_from_dps_response_topic``), so the ``$`` of ``$dps`` and of
    ``?$rid=`` must be the only ones: the rid is ``quote(safe="")``-encoded (``$`` → ``%24``).
    """
    topic = f"$dps/registrations/res/{status}/?$rid={quote(rid, safe='')}"
    return topic if retry_after is None else f"{topic}&retry-after={int(retry_after)}"


@dataclass(frozen=True, slots=True)
class RegistrationState:
    """What ``registrationState`` reports once a device is assigned (§3 step 3)."""

    registration_id: str
    device_id: str
    assigned_hub: str
    created: datetime
    last_updated: datetime
    etag: str
    payload: Any = None
    substatus: str = "initialAssignment"


def format_utc(moment: datetime) -> str:
    """DPS timestamps: ISO-8601 in UTC with a ``Z`` (naive datetimes are taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def assigning_body(operation_id: str) -> bytes:
    """``{"operationId":…, "status":"assigning"}``: the device polls after 2 s."""
    return _dump({"operationId": operation_id, "status": "assigning"})


def assigned_body(operation_id: str, state: RegistrationState) -> bytes:
    """``status: assigned`` with the ``registrationState`` the SDK reads."""
    reg: dict[str, Any] = {
        "registrationId": state.registration_id,
        "createdDateTimeUtc": format_utc(state.created),
        "assignedHub": state.assigned_hub,
        "deviceId": state.device_id,
        "status": "assigned",
        "substatus": state.substatus,
        "lastUpdatedDateTimeUtc": format_utc(state.last_updated),
        "etag": state.etag,
    }
    if state.payload is not None:  # DPS sends it only when allocation returned one
        reg["payload"] = state.payload
    return _dump({"operationId": operation_id, "status": "assigned", "registrationState": reg})


def failed_body(
    operation_id: str,
    registration_id: str,
    error_code: int,
    error_message: str,
    created: datetime,
    last_updated: datetime,
) -> bytes:
    """``status: failed`` (the SDK raises ServiceError); DPS puts the error in the state."""
    reg = {
        "registrationId": registration_id,
        "createdDateTimeUtc": format_utc(created),
        "status": "failed",
        "errorCode": error_code,
        "errorMessage": error_message,
        "lastUpdatedDateTimeUtc": format_utc(last_updated),
    }
    return _dump({"operationId": operation_id, "status": "failed", "registrationState": reg})


def error_body(error_code: int, message: str, tracking_id: str, now: datetime) -> bytes:
    """The body of a 4xx/5xx response topic, shaped like DPS's REST errors."""
    return _dump(
        {
            "errorCode": error_code,
            "trackingId": tracking_id,
            "message": message,
            "timestampUtc": format_utc(now),
        }
    )


# --- ids --------------------------------------------------------------------------------------


def generate_id_scope() -> str:
    """A new ID scope shaped like Azure's: ``0ne`` + 8 uppercase hex digits."""
    return "0ne" + secrets.token_hex(4).upper()


def generate_operation_id() -> str:
    """An opaque operation id shaped like DPS's: ``4.{16 hex}.{uuid}``."""
    return f"4.{secrets.token_hex(8)}.{uuid.uuid4()}"
