"""The device side of the IoT Hub topics, checked against the server-side parsers."""

from __future__ import annotations

from aislehub.protocol import iothub
from aislehub.simulator import topics


def test_telemetry_topic_orders_system_properties_like_the_sdk() -> None:
    topic = topics.telemetry_topic(
        "cooler-1", {"zeta": "1", "$.ce": "utf-8", "alpha": "x y", "$.mid": "m/1", "$.ct": "a/b"}
    )
    assert topic == (
        "devices/cooler-1/messages/events/"
        "%24.mid=m%2F1&%24.ct=a%2Fb&%24.ce=utf-8&alpha=x%20y&zeta=1"
    )
    parsed = iothub.parse_device_topic(topic, "cooler-1", None)
    assert parsed == iothub.TelemetryTopic(
        {"$.mid": "m/1", "$.ct": "a/b", "$.ce": "utf-8", "alpha": "x y", "zeta": "1"}
    )


def test_requests_parse_on_the_server_side() -> None:
    assert iothub.parse_device_topic(topics.twin_get_topic("r-1"), "d", None) == iothub.TwinGet(
        "r-1"
    )
    patch = iothub.parse_device_topic(topics.twin_patch_topic("r-2"), "d", None)
    assert patch == iothub.TwinPatchReported("r-2")
    response = iothub.parse_device_topic(topics.method_response_topic(409, "7"), "d", None)
    assert response == iothub.MethodResponse(409, "7")


def test_hub_topics_parse_on_the_device_side() -> None:
    parse = topics.parse_hub_topic
    assert parse(iothub.twin_response_topic(204, "r-9", 12), "d") == topics.TwinReply(
        204, "r-9", 12
    )
    assert parse(iothub.desired_patch_topic(5), "d") == topics.DesiredPatch(5)
    assert parse(iothub.method_request_topic("cabinet*defrost", "42"), "d") == topics.MethodCall(
        "cabinet*defrost", "42"
    )
    c2d = iothub.c2d_topic("d", {"$.mid": "1", "k": "a/b"})
    assert parse(c2d, "d") == topics.CloudMessage({"$.mid": "1", "k": "a/b"})
    assert parse("devices/other/messages/devicebound/", "d") is None
    assert parse("$iothub/twin/res/abc/?$rid=1", "d") is None


def test_hub_username_percent_encodes_the_model_id() -> None:
    username = topics.hub_username("hub.example", "cooler-1", "dtmi:x:Y;1")
    identity = iothub.parse_connect_identity("cooler-1", username)
    assert isinstance(identity, iothub.HubIdentity)
    assert identity.model_id == "dtmi:x:Y;1"
    assert topics.hub_username("h", "d", None) == "h/d/?api-version=2021-04-12"
