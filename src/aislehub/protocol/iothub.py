"""The IoT Hub MQTT dialect: CONNECT identity, property bags, topics (contract §2).

Sans-IO and stateless: every function maps strings to values or values to strings.
Percent-encoding follows the SDK (``mqtt_topic_iothub.py``): ``quote(…, safe="")`` out,
plain ``unquote`` in, never ``+`` → space. Device and module ids travel raw, never encoded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from aislehub.errors import AuthenticationFailed, TopicNotAllowed

_STATUS = re.compile(r"-?[0-9]{1,9}")  # method status is any int the application chose


@dataclass(frozen=True, slots=True)
class HubIdentity:
    """Who a hub CONNECT claims to be (§2.1): ``hostname`` is the one the app passed
    (never ``gateway_hostname``), the same name the SAS ``sr`` carries (§4)."""

    hostname: str
    device_id: str
    module_id: str | None
    api_version: str | None
    model_id: str | None
    client_type: str | None

    @property
    def client_id(self) -> str:
        return f"{self.device_id}/{self.module_id}" if self.module_id else self.device_id


@dataclass(frozen=True, slots=True)
class DpsIdentity:
    """Who a DPS CONNECT claims to be (§3): ``{idScope}/registrations/{regId}/api-version=…``."""

    id_scope: str
    registration_id: str
    api_version: str
    client_version: str | None


# --- property bags (§2.2) ------------------------------------------------------------------


def decode_property_bag(bag: str) -> dict[str, str]:
    """``k=v&…`` → dict: split on ``&``, then at the first ``=``; percent-decode, no ``+``.

    A part without ``=`` maps to ``""``; empty parts are skipped; a repeated key keeps
    its last value.
    """
    props: dict[str, str] = {}
    for part in bag.split("&"):
        if part:
            key, _, value = part.partition("=")
            props[unquote(key)] = unquote(value)
    return props


def encode_property_bag(props: Mapping[str, str]) -> str:
    """dict → ``k=v&…`` with every key and value ``quote(safe="")``-encoded (``/`` → ``%2F``)."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in props.items())


# --- CONNECT (§2.1, §3) -----------------------------------------------------------------------


def parse_connect_identity(client_id: str, username: str) -> HubIdentity | DpsIdentity:
    """Tell a hub CONNECT from a DPS one by the username's shape and parse it.

    Hub: ``{host}/{clientId}/?{query}``, split at the first ``/?``. DPS:
    ``{idScope}/registrations/{regId}/{query}`` with no ``?``. Raises AuthenticationFailed.
    """
    if "/?" in username:
        return _parse_hub_username(client_id, username)
    return _parse_dps_username(client_id, username)


def _parse_hub_username(client_id: str, username: str) -> HubIdentity:
    head, _, query = username.partition("/?")
    hostname, _, named_client = head.partition("/")
    if not hostname or named_client != client_id:
        raise _bad_username(username, f"expected '<host>/{client_id}/?<query>'")
    device_id, module_id = _split_client_id(client_id)
    params = decode_property_bag(query)
    return HubIdentity(
        hostname=hostname,
        device_id=device_id,
        module_id=module_id,
        api_version=params.get("api-version"),
        model_id=params.get("model-id"),
        client_type=params.get("DeviceClientType"),
    )


def _split_client_id(client_id: str) -> tuple[str, str | None]:
    """``{deviceId}`` or ``{deviceId}/{moduleId}`` (§2.1); ids never contain ``/``."""
    parts = client_id.split("/")
    if len(parts) > 2 or not all(parts):
        raise AuthenticationFailed(f"client id {client_id!r} is not '<device>[/<module>]'")
    return parts[0], parts[1] if len(parts) == 2 else None


def _parse_dps_username(client_id: str, username: str) -> DpsIdentity:
    parts = username.split("/", 3)
    if len(parts) != 4 or parts[1] != "registrations" or not parts[0]:
        raise _bad_username(username, "expected a hub or DPS username")
    id_scope, _, registration_id, query = parts
    if registration_id != client_id:
        raise _bad_username(username, f"registration id differs from client id {client_id!r}")
    params = decode_property_bag(query)
    if "api-version" not in params:
        raise _bad_username(username, "DPS username lacks api-version")
    return DpsIdentity(
        id_scope, registration_id, params["api-version"], params.get("ClientVersion")
    )


def _bad_username(username: str, why: str) -> AuthenticationFailed:
    return AuthenticationFailed(f"bad MQTT username {username!r}: {why}")


# --- device → cloud topics (§2.2) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TelemetryTopic:
    """``…/messages/events/{bag}``; keys starting with ``$.`` are system properties."""

    properties: dict[str, str]


@dataclass(frozen=True, slots=True)
class TwinGet:
    rid: str


@dataclass(frozen=True, slots=True)
class TwinPatchReported:
    rid: str


@dataclass(frozen=True, slots=True)
class MethodResponse:
    status: int
    rid: str


DeviceTopic = TelemetryTopic | TwinGet | TwinPatchReported | MethodResponse

_TWIN_GET = "$iothub/twin/GET/"
_TWIN_PATCH_REPORTED = "$iothub/twin/PATCH/properties/reported/"
_METHOD_RESPONSE = "$iothub/methods/res/"


def device_base(device_id: str, module_id: str | None) -> str:
    """``devices/{d}`` or ``devices/{d}/modules/{m}``; ids are never encoded (§2.2)."""
    return f"devices/{device_id}/modules/{module_id}" if module_id else f"devices/{device_id}"


def parse_device_topic(topic: str, device_id: str, module_id: str | None) -> DeviceTopic:
    """Classify a hub device's PUBLISH topic; anything else raises TopicNotAllowed.

    Telemetry must name the connection's own device (and module): per-device isolation.
    """
    events = f"{device_base(device_id, module_id)}/messages/events"
    if topic == events or topic.startswith(events + "/"):
        return TelemetryTopic(decode_property_bag(topic[len(events) + 1 :]))
    if topic.startswith(_TWIN_GET):
        return TwinGet(_rid(topic, topic[len(_TWIN_GET) :]))
    if topic.startswith(_TWIN_PATCH_REPORTED):
        return TwinPatchReported(_rid(topic, topic[len(_TWIN_PATCH_REPORTED) :]))
    if topic.startswith(_METHOD_RESPONSE):
        return _parse_method_response(topic)
    raise TopicNotAllowed(f"topic {topic!r} is not allowed for {device_base(device_id, module_id)}")


def _rid(topic: str, rest: str) -> str:
    """The ``$rid`` of a rest of the form ``?$rid=…[&…]``; every pair is ``k=v`` (§2.4)."""
    if not rest.startswith("?"):
        raise TopicNotAllowed(f"topic {topic!r} has no '?$rid=' query")
    rid = decode_property_bag(rest[1:]).get("$rid")
    if not rid:
        raise TopicNotAllowed(f"topic {topic!r} has no $rid")
    return rid


def _parse_method_response(topic: str) -> MethodResponse:
    """``$iothub/methods/res/{status}/?$rid={rid}``."""
    status, sep, rest = topic[len(_METHOD_RESPONSE) :].partition("/")
    status = unquote(status)
    if not sep or not _STATUS.fullmatch(status):
        raise TopicNotAllowed(f"method response topic {topic!r} has no integer status")
    return MethodResponse(int(status), _rid(topic, rest))


# --- subscriptions (§2.3) ---------------------------------------------------------------------

_SHARED_FILTERS = frozenset(
    {"$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#", "$iothub/methods/POST/#"}
)


def is_allowed_subscription(topic_filter: str, device_id: str, module_id: str | None) -> bool:
    """The filters the SDK subscribes to (§2.3).

    ``devices/+/messages/devicebound/#`` is the C2D filter of Azure's embedded C SDK; it is
    safe because the hub only ever publishes a device's own messages to its connection.
    """
    if topic_filter in _SHARED_FILTERS:
        return True
    if module_id:
        return topic_filter == f"{device_base(device_id, module_id)}/inputs/#"
    return topic_filter in (
        f"devices/{device_id}/messages/devicebound/#",
        "devices/+/messages/devicebound/#",
    )


# --- cloud → device topics (§2.4) -------------------------------------------------------------


def _q(value: str) -> str:
    return quote(value, safe="")


def twin_response_topic(status: int, rid: str, version: int | None = None) -> str:
    """``$iothub/twin/res/{status}/?$rid={rid}[&$version={n}]``; every part is ``k=v``."""
    topic = f"$iothub/twin/res/{status}/?$rid={_q(rid)}"
    return topic if version is None else f"{topic}&$version={version}"


def desired_patch_topic(version: int) -> str:
    """``$iothub/twin/PATCH/properties/desired/?$version={n}``; the body carries it too."""
    return f"$iothub/twin/PATCH/properties/desired/?$version={version}"


def method_request_topic(name: str, rid: str) -> str:
    """``$iothub/methods/POST/{name}/?$rid={rid}``; the name is segment 3, so ``/`` → ``%2F``."""
    return f"$iothub/methods/POST/{_q(name)}/?$rid={_q(rid)}"


def c2d_topic(device_id: str, props: Mapping[str, str]) -> str:
    """``devices/{d}/messages/devicebound/{bag}``; the SDK reads segment 4 as the bag."""
    return f"devices/{device_id}/messages/devicebound/{encode_property_bag(props)}"


def module_input_topic(
    device_id: str, module_id: str, input_name: str, props: Mapping[str, str]
) -> str:
    """``devices/{d}/modules/{m}/inputs/{input}/{bag}`` (§2.4)."""
    base = device_base(device_id, module_id)
    return f"{base}/inputs/{_q(input_name)}/{encode_property_bag(props)}"
