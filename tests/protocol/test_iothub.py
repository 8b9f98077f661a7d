"""The IoT Hub MQTT dialect, checked against the SDK's own topic code (contract §2)."""

# The SDK is untyped; calling into it is the point of these tests.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from urllib.parse import quote

import pytest
from azure.iot.device import Message
from azure.iot.device.iothub.pipeline import mqtt_topic_iothub as sdk
from hypothesis import given
from hypothesis import strategies as st

from aislehub.errors import AuthenticationFailed, TopicNotAllowed
from aislehub.protocol import iothub
from aislehub.protocol.iothub import (
    DpsIdentity,
    HubIdentity,
    MethodResponse,
    TelemetryTopic,
    TwinGet,
    TwinPatchReported,
)

UA = "azure-iot-device-iothub-py%2F2.14.0%283.11.7%3BLinux%20%231%20SMP%3Bx86_64%29"
PNP_USERNAME = (
    f"localhost/cooler-1/?api-version=2020-09-30&DeviceClientType={UA}"
    "&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1"
)
DPS_USERNAME = (
    "0ne00ABCDEF/registrations/cooler-1/api-version=2019-03-31"
    "&ClientVersion=azure-iot-device-provisioning-py%2F2.14.0%283.11.7%29"
)
# Printable text without surrogates (MQTT strings are UTF-8, MQTT 3.1.1 §1.5.3).
TEXT = st.text(st.characters(codec="utf-8"), max_size=20)


# --- CONNECT ----------------------------------------------------------------------------------


def test_hub_pnp_username() -> None:
    identity = iothub.parse_connect_identity("cooler-1", PNP_USERNAME)
    assert identity == HubIdentity(
        hostname="localhost",
        device_id="cooler-1",
        module_id=None,
        api_version="2020-09-30",
        model_id="dtmi:com:example:Thermostat;1",
        client_type="azure-iot-device-iothub-py/2.14.0(3.11.7;Linux #1 SMP;x86_64)",
    )
    assert identity.client_id == "cooler-1"


def test_hub_module_username() -> None:
    username = f"myhub.example.net/cooler-1/mod1/?api-version=2019-10-01&DeviceClientType={UA}"
    identity = iothub.parse_connect_identity("cooler-1/mod1", username)
    assert isinstance(identity, HubIdentity)
    assert (identity.hostname, identity.device_id, identity.module_id) == (
        "myhub.example.net",
        "cooler-1",
        "mod1",
    )
    assert identity.model_id is None and identity.client_id == "cooler-1/mod1"


def test_hub_username_plus_is_not_space() -> None:
    identity = iothub.parse_connect_identity("d", "h/d/?DeviceClientType=a+b%20c&x")
    assert isinstance(identity, HubIdentity)
    assert identity.client_type == "a+b c" and identity.api_version is None


def test_dps_username() -> None:
    identity = iothub.parse_connect_identity("cooler-1", DPS_USERNAME)
    assert identity == DpsIdentity(
        "0ne00ABCDEF", "cooler-1", "2019-03-31", "azure-iot-device-provisioning-py/2.14.0(3.11.7)"
    )


@pytest.mark.parametrize(
    ("client_id", "username"),
    [
        ("cooler-2", PNP_USERNAME),  # username names another client
        ("cooler-1", "/cooler-1/?api-version=1"),  # no host
        ("a/b/c", "h/a/b/c/?api-version=1"),  # too many segments
        ("a/", "h/a//?api-version=1"),  # empty module id
        ("cooler-1", "localhost/cooler-1"),  # neither shape
        ("cooler-1", "0ne00ABCDEF/registrations/cooler-1"),  # DPS without query
        ("cooler-1", "0ne00ABCDEF/registrations/cooler-1/ClientVersion=x"),  # no api-version
        ("cooler-2", DPS_USERNAME),  # registration id differs
        ("cooler-1", "0ne00ABCDEF/enrollments/cooler-1/api-version=1"),
        ("", ""),
    ],
)
def test_bad_usernames(client_id: str, username: str) -> None:
    with pytest.raises(AuthenticationFailed):
        iothub.parse_connect_identity(client_id, username)


# --- property bags ----------------------------------------------------------------------------


def test_decode_bag_rules() -> None:
    assert iothub.decode_property_bag("") == {}
    assert iothub.decode_property_bag("a=1&&b&c=x=y&d=%2B+") == {
        "a": "1",
        "b": "",
        "c": "x=y",
        "d": "++",
    }


def test_sdk_telemetry_bag_decodes() -> None:
    msg = Message("x", message_id="m-1", content_encoding="utf-8", content_type="application/json")
    msg.correlation_id = "corr-1"
    msg.custom_properties = {"$.sub": "thermostat1", "alert level": "hi/low&x=y"}
    topic = sdk.encode_message_properties_in_topic(msg, "devices/cooler-1/messages/events/")
    parsed = iothub.parse_device_topic(topic, "cooler-1", None)
    assert parsed == TelemetryTopic(
        {
            "$.mid": "m-1",
            "$.cid": "corr-1",
            "$.ct": "application/json",
            "$.ce": "utf-8",
            "$.sub": "thermostat1",
            "alert level": "hi/low&x=y",
        }
    )


def test_encode_bag_escapes_everything() -> None:
    assert iothub.encode_property_bag({"$.ct": "application/json", "a b": "x&y=z;"}) == (
        "%24.ct=application%2Fjson&a%20b=x%26y%3Dz%3B"
    )


@given(st.dictionaries(TEXT, TEXT, max_size=6))
def test_bag_round_trip(props: dict[str, str]) -> None:
    bag = iothub.encode_property_bag(props)
    assert "/" not in bag
    assert iothub.decode_property_bag(bag) == props


# --- device → cloud topics --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "module_id", "expected"),
    [
        ("devices/cooler-1/messages/events/", None, TelemetryTopic({})),
        ("devices/cooler-1/messages/events", None, TelemetryTopic({})),
        ("devices/cooler-1/modules/m1/messages/events/%24.on=out1", "m1",
         TelemetryTopic({"$.on": "out1"})),
        ("$iothub/twin/GET/?$rid=5f0e", None, TwinGet("5f0e")),
        ("$iothub/twin/PATCH/properties/reported/?$rid=a%2Fb", "m1", TwinPatchReported("a/b")),
        ("$iothub/methods/res/200/?$rid=1", None, MethodResponse(200, "1")),
        ("$iothub/methods/res/-3/?$rid=x", None, MethodResponse(-3, "x")),
    ],
)  # fmt: skip
def test_device_topics(topic: str, module_id: str | None, expected: object) -> None:
    assert iothub.parse_device_topic(topic, "cooler-1", module_id) == expected


@pytest.mark.parametrize(
    ("topic", "module_id"),
    [
        ("devices/cooler-2/messages/events/", None),  # another device
        ("devices/cooler-10/messages/events/", None),
        ("devices/cooler-1/messages/eventsX", None),
        ("devices/cooler-1/modules/m1/messages/events/", None),  # device posing as module
        ("devices/cooler-1/messages/events/", "m1"),  # module posing as device
        ("devices/cooler-1/modules/m2/messages/events/", "m1"),
        ("devices/cooler-1/messages/devicebound/", None),
        ("$iothub/twin/GET/", None),  # no rid
        ("$iothub/twin/GET/?$version=1", None),
        ("$iothub/twin/GET/?$rid=", None),
        ("$iothub/twin/PATCH/properties/desired/?$rid=1", None),
        ("$iothub/methods/res/ok/?$rid=1", None),
        ("$iothub/methods/res/200", None),
        ("$iothub/methods/POST/reboot/?$rid=1", None),
        ("$dps/registrations/PUT/iotdps-register/?$rid=1", None),
        ("#", None),
        ("", None),
    ],
)
def test_refused_device_topics(topic: str, module_id: str | None) -> None:
    with pytest.raises(TopicNotAllowed):
        iothub.parse_device_topic(topic, "cooler-1", module_id)


def test_sdk_publish_topics_parse() -> None:
    rid = "1a2b3c4d-0000-4000-8000-000000000000"
    get = sdk.get_twin_topic_for_publish("GET", "/", rid)
    patch = sdk.get_twin_topic_for_publish("PATCH", "/properties/reported/", rid)
    method = sdk.get_method_topic_for_publish("srv rid", 404)
    assert iothub.parse_device_topic(get, "d", None) == TwinGet(rid)
    assert iothub.parse_device_topic(patch, "d", None) == TwinPatchReported(rid)
    assert iothub.parse_device_topic(method, "d", None) == MethodResponse(404, "srv rid")


# --- subscriptions ----------------------------------------------------------------------------


def test_sdk_subscriptions_allowed() -> None:
    for topic_filter in (
        sdk.get_twin_response_topic_for_subscribe(),
        sdk.get_twin_patch_topic_for_subscribe(),
        sdk.get_method_topic_for_subscribe(),
        sdk.get_c2d_topic_for_subscribe("cooler-1"),
        "devices/+/messages/devicebound/#",
    ):
        assert iothub.is_allowed_subscription(topic_filter, "cooler-1", None), topic_filter
    inputs = sdk.get_input_topic_for_subscribe("cooler-1", "m1")
    assert iothub.is_allowed_subscription(inputs, "cooler-1", "m1")


@pytest.mark.parametrize(
    ("topic_filter", "module_id"),
    [
        ("#", None),
        ("devices/#", None),
        ("devices/cooler-2/messages/devicebound/#", None),
        ("devices/cooler-1/messages/devicebound/#", "m1"),  # modules get no C2D
        ("devices/cooler-1/modules/m1/inputs/#", None),
        ("devices/cooler-1/modules/m2/inputs/#", "m1"),
        ("devices/+/modules/+/inputs/#", "m1"),
        ("$iothub/#", None),
        ("$dps/registrations/res/#", None),
    ],
)
def test_other_subscriptions_refused(topic_filter: str, module_id: str | None) -> None:
    assert not iothub.is_allowed_subscription(topic_filter, "cooler-1", module_id)


# --- cloud → device topics, read back with the SDK's parsers ---------------------------------


def test_twin_response_topic() -> None:
    assert iothub.twin_response_topic(200, "r1") == "$iothub/twin/res/200/?$rid=r1"
    topic = iothub.twin_response_topic(204, "a&b=c", version=7)
    assert topic == "$iothub/twin/res/204/?$rid=a%26b%3Dc&$version=7"
    assert sdk.is_twin_response_topic(topic)
    assert sdk.get_twin_request_id_from_topic(topic) == "a&b=c"
    assert sdk.get_twin_status_code_from_topic(topic) == "204"
    assert sdk._extract_properties(topic.split("?")[1]) == {"rid": "a&b=c", "version": "7"}


def test_desired_patch_topic() -> None:
    topic = iothub.desired_patch_topic(12)
    assert topic == "$iothub/twin/PATCH/properties/desired/?$version=12"
    assert sdk.is_twin_desired_property_patch_topic(topic)


def test_method_request_topic() -> None:
    topic = iothub.method_request_topic("thermostat1*get/Max Min", "42")
    assert topic == "$iothub/methods/POST/thermostat1%2Aget%2FMax%20Min/?$rid=42"
    assert sdk.is_method_topic(topic)
    assert sdk.get_method_name_from_topic(topic) == "thermostat1*get/Max Min"
    assert sdk.get_method_request_id_from_topic(topic) == "42"


def test_c2d_topic_read_by_sdk() -> None:
    props = {
        "$.mid": "7",
        "$.ct": "application/json",
        "$.ce": "utf-8",
        "$.to": "/devices/cooler-1/messages/devicebound",
        "iothub-ack": "full",
        "path": "a/b&c=d",
    }
    topic = iothub.c2d_topic("cooler-1", props)
    assert topic.startswith("devices/cooler-1/messages/devicebound/%24.mid=7&")
    assert sdk.is_c2d_topic(topic, "cooler-1")
    msg = Message(b"")
    sdk.extract_message_properties_from_topic(topic, msg)
    assert (msg.message_id, msg.content_type, msg.content_encoding, msg.ack) == (
        "7",
        "application/json",
        "utf-8",
        "full",
    )
    assert msg.custom_properties == {"path": "a/b&c=d"}


def test_c2d_topic_without_properties() -> None:
    topic = iothub.c2d_topic("cooler-1", {})
    assert topic == "devices/cooler-1/messages/devicebound/"
    msg = Message(b"")
    sdk.extract_message_properties_from_topic(topic, msg)
    assert msg.custom_properties == {}


def test_module_input_topic_read_by_sdk() -> None:
    topic = iothub.module_input_topic("cooler-1", "m1", "in/1", {"k": "v/w"})
    assert topic == f"devices/cooler-1/modules/m1/inputs/{quote('in/1', safe='')}/k=v%2Fw"
    assert sdk.is_input_topic(topic, "cooler-1", "m1")
    assert sdk.get_input_name_from_topic(topic) == "in/1"
    msg = Message(b"")
    sdk.extract_message_properties_from_topic(topic, msg)
    assert msg.custom_properties == {"k": "v/w"}
