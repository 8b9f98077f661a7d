"""The device side of the IoT Hub topics (contract §2.2-2.4): build what the SDK sends,
parse what the hub sends back. Pure functions, no I/O.

Percent-encoding follows the SDK: every path value and bag entry is ``quote(safe="")``;
replies are decoded with plain ``unquote`` (never ``+`` → space).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlencode

from aislehub.protocol.iothub import decode_property_bag, encode_property_bag

HUB_API_VERSION = "2021-04-12"
TWIN_RESPONSES = "$iothub/twin/res/#"
DESIRED_PATCHES = "$iothub/twin/PATCH/properties/desired/#"
METHOD_REQUESTS = "$iothub/methods/POST/#"

# The order in which the SDK writes system properties (mqtt_topic_iothub.py L334-404).
SYSTEM_PROPERTY_ORDER = ("$.on", "$.mid", "$.cid", "$.uid", "$.ct", "$.ce", "$.ifid", "$.exp")

_TWIN_RES = "$iothub/twin/res/"
_DESIRED = "$iothub/twin/PATCH/properties/desired/"
_METHOD_POST = "$iothub/methods/POST/"


def subscriptions(device_id: str) -> tuple[str, ...]:
    """The four filters the SDK subscribes to for a device client (§2.3)."""
    return (TWIN_RESPONSES, DESIRED_PATCHES, METHOD_REQUESTS, c2d_filter(device_id))


def c2d_filter(device_id: str) -> str:
    return f"devices/{device_id}/messages/devicebound/#"


def hub_username(hostname: str, device_id: str, model_id: str | None) -> str:
    """``{host}/{deviceId}/?api-version=…[&model-id=<encoded dtmi>]`` (§2.1)."""
    query = {"api-version": HUB_API_VERSION}
    if model_id:
        query["model-id"] = model_id
    return f"{hostname}/{device_id}/?{urlencode(query, quote_via=quote, safe='')}"


def telemetry_bag(properties: Mapping[str, str]) -> str:
    """System properties first in the SDK's order, then the others sorted by key (§2.2)."""
    system = [k for k in SYSTEM_PROPERTY_ORDER if k in properties]
    custom = sorted(k for k in properties if k not in SYSTEM_PROPERTY_ORDER)
    return encode_property_bag({k: properties[k] for k in (*system, *custom)})


def telemetry_topic(device_id: str, properties: Mapping[str, str]) -> str:
    """``devices/{id}/messages/events/{bag}``; the trailing ``/`` is always there."""
    return f"devices/{device_id}/messages/events/{telemetry_bag(properties)}"


def twin_get_topic(rid: str) -> str:
    return f"$iothub/twin/GET/?$rid={quote(rid, safe='')}"


def twin_patch_topic(rid: str) -> str:
    return f"$iothub/twin/PATCH/properties/reported/?$rid={quote(rid, safe='')}"


def method_response_topic(status: int, rid: str) -> str:
    return f"$iothub/methods/res/{status}/?$rid={quote(rid, safe='')}"


# --- hub → device ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TwinReply:
    """``$iothub/twin/res/{status}/?$rid={rid}[&$version={n}]``."""

    status: int
    rid: str
    version: int | None


@dataclass(frozen=True, slots=True)
class DesiredPatch:
    """``$iothub/twin/PATCH/properties/desired/?$version={n}``."""

    version: int | None


@dataclass(frozen=True, slots=True)
class MethodCall:
    """``$iothub/methods/POST/{name}/?$rid={rid}``."""

    name: str
    rid: str


@dataclass(frozen=True, slots=True)
class CloudMessage:
    """``devices/{id}/messages/devicebound/{bag}``."""

    properties: dict[str, str]


HubTopic = TwinReply | DesiredPatch | MethodCall | CloudMessage


def parse_hub_topic(topic: str, device_id: str) -> HubTopic | None:
    """Classify a topic the hub published to us; None for anything unexpected."""
    if topic.startswith(_TWIN_RES):
        return _twin_reply(topic[len(_TWIN_RES) :])
    if topic.startswith(_DESIRED):
        return DesiredPatch(_int(_query(topic[len(_DESIRED) :]).get("$version")))
    if topic.startswith(_METHOD_POST):
        name, _, rest = topic[len(_METHOD_POST) :].partition("/")
        return MethodCall(unquote(name), _query(rest).get("$rid", ""))
    c2d = c2d_filter(device_id)[:-1]
    if topic.startswith(c2d):
        return CloudMessage(decode_property_bag(topic[len(c2d) :]))
    return None


def _twin_reply(rest: str) -> TwinReply | None:
    status, _, query_part = rest.partition("/")
    code = _int(status)
    if code is None:
        return None
    query = _query(query_part)
    return TwinReply(code, query.get("$rid", ""), _int(query.get("$version")))


def _query(rest: str) -> dict[str, str]:
    return decode_property_bag(rest[1:]) if rest.startswith("?") else {}


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
