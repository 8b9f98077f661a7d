"""The DPS dialect, read back with the SDK's own parsers (contract §3)."""

# The SDK is untyped; calling into it is the point of these tests.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from azure.iot.device.provisioning.pipeline import mqtt_topic_provisioning as sdk
from azure.iot.device.provisioning.pipeline.pipeline_stages_provisioning import (
    DeviceRegistrationPayload,
    PollingStatusStage,
)

from aislehub.errors import ProtocolError, TopicNotAllowed
from aislehub.protocol import dps
from aislehub.protocol.dps import DpsPoll, DpsRegister, RegistrationState

CREATED = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
UPDATED = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))


def test_sdk_request_topics_parse() -> None:
    register = sdk.get_register_topic_for_publish("5f0e-1")
    poll = sdk.get_query_topic_for_publish("5f0e-2", "4.abc.def")
    assert dps.parse_dps_topic(register) == DpsRegister("5f0e-1")
    assert dps.parse_dps_topic(poll) == DpsPoll("5f0e-2", "4.abc.def")


@pytest.mark.parametrize(
    "topic",
    [
        "$dps/registrations/PUT/iotdps-register/",
        "$dps/registrations/PUT/iotdps-register/?$rid=",
        "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=1",
        "$dps/registrations/res/#",
        "$dps/registrations/DELETE/x/?$rid=1",
        "devices/cooler-1/messages/events/",
    ],
)
def test_refused_dps_topics(topic: str) -> None:
    with pytest.raises(TopicNotAllowed):
        dps.parse_dps_topic(topic)


def test_subscription() -> None:
    assert dps.is_allowed_dps_subscription(sdk.get_register_topic_for_subscribe())
    assert not dps.is_allowed_dps_subscription("$dps/#")


def test_sdk_register_body() -> None:
    for payload in ({"modelId": "dtmi:com:example:Thermostat;1"}, None):
        body = DeviceRegistrationPayload("cooler-1", payload).get_json_string().encode()
        request = dps.parse_register_body(body, "cooler-1")
        assert (request.registration_id, request.payload) == ("cooler-1", payload)


def test_register_body_lenient_shapes() -> None:
    assert dps.parse_register_body(b" ", "r").payload is None
    assert dps.parse_register_body(b'{"registrationId":"r"}', "r").payload is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"registrationId":"other"}', "differs"),
    ],
)
def test_bad_register_body(body: bytes, message: str) -> None:
    with pytest.raises(dps.BadDpsRequest, match=message) as info:
        dps.parse_register_body(body, "r")
    assert isinstance(info.value, ProtocolError) and info.value.status == 400


@pytest.mark.parametrize(
    ("status", "rid", "retry_after"), [(202, "a-b", 3), (200, "x$y&z=w", None), (429, "1", 10)]
)
def test_response_topic_read_by_sdk(status: int, rid: str, retry_after: int | None) -> None:
    topic = dps.response_topic(status, rid, retry_after)
    assert topic.count("$") == 2  # the SDK splits on '$' (contract §3 parsing quirk)
    assert sdk.is_dps_response_topic(topic)
    assert sdk.extract_status_code_from_dps_response_topic(topic) == str(status)
    expected = {"rid": rid} | ({"retry-after": str(retry_after)} if retry_after else {})
    assert sdk.extract_properties_from_dps_response_topic(topic) == expected


def test_exact_response_topic() -> None:
    assert dps.response_topic(202, "r1", 3) == "$dps/registrations/res/202/?$rid=r1&retry-after=3"


def test_assigning_body() -> None:
    assert json.loads(dps.assigning_body("4.a.b")) == {
        "operationId": "4.a.b",
        "status": "assigning",
    }


def test_assigned_body_read_by_sdk() -> None:
    state = RegistrationState(
        "cooler-1", "cooler-1", "hub.example.net", CREATED, UPDATED, '"etag-1"', {"k": 1}
    )
    doc = json.loads(dps.assigned_body("4.a.b", state))
    assert doc["registrationState"] == {
        "registrationId": "cooler-1",
        "createdDateTimeUtc": "2024-05-01T12:00:00.123456Z",
        "assignedHub": "hub.example.net",
        "deviceId": "cooler-1",
        "status": "assigned",
        "substatus": "initialAssignment",
        "lastUpdatedDateTimeUtc": "2024-05-01T12:00:00.000000Z",
        "etag": '"etag-1"',
        "payload": {"k": 1},
    }
    result = PollingStatusStage._form_complete_result("4.a.b", doc, doc["status"])
    reg = result.registration_state
    assert (result.status, reg.device_id, reg.assigned_hub, reg.sub_status) == (
        "assigned",
        "cooler-1",
        "hub.example.net",
        "initialAssignment",
    )
    assert json.loads(reg.response_payload) == {"k": 1}


def test_assigned_body_without_payload() -> None:
    state = RegistrationState("r", "d", "h", CREATED, CREATED, "e")
    assert "payload" not in json.loads(dps.assigned_body("o", state))["registrationState"]


def test_failed_body() -> None:
    doc = json.loads(dps.failed_body("o", "r", 401002, "no enrollment", CREATED, CREATED))
    assert doc["status"] == "failed"
    assert doc["registrationState"]["errorCode"] == 401002
    assert doc["registrationState"]["errorMessage"] == "no enrollment"


def test_error_body() -> None:
    doc = json.loads(dps.error_body(dps.ERROR_UNAUTHORIZED, "denied", "t-1", CREATED))
    assert doc == {
        "errorCode": 401002,
        "trackingId": "t-1",
        "message": "denied",
        "timestampUtc": "2024-05-01T12:00:00.123456Z",
    }


def test_naive_datetime_is_utc() -> None:
    assert dps.format_utc(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05.000000Z"


def test_generated_ids() -> None:
    scopes = {dps.generate_id_scope() for _ in range(20)}
    assert len(scopes) == 20
    assert all(re.fullmatch(r"0ne[0-9A-F]{8}", s) for s in scopes)
    assert re.fullmatch(r"4\.[0-9a-f]{16}\.[0-9a-f-]{36}", dps.generate_operation_id())
