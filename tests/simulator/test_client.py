"""DeviceClient and provision() against the in-process fake hub (plain TCP, loopback)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest

from aislehub.protocol import sas
from aislehub.protocol.iothub import decode_property_bag
from aislehub.simulator.client import DeviceClient
from aislehub.simulator.errors import ConnectRefused
from aislehub.simulator.handlers import CloudMessage, Handlers
from aislehub.simulator.provision import provision
from aislehub.simulator.topics import subscriptions
from aislehub.simulator.transport import Endpoint
from tests.simulator.fake_hub import FakeHub, wait_for

pytestmark = pytest.mark.anyio

KEY = base64.b64encode(b"k" * 32).decode()
MODEL = "dtmi:aislehub:retail:BeverageCooler;1"


def make_client(hub: FakeHub, **kwargs: Any) -> DeviceClient:
    endpoint = Endpoint("hub.example", hub.port, None, address="127.0.0.1")
    return DeviceClient(endpoint, "cooler-1", KEY, model_id=MODEL, seed=1, **kwargs)


async def test_connect_sends_sdk_identity_and_subscribes() -> None:
    async with FakeHub() as hub, make_client(hub) as client:
        assert client.connected
        connect = hub.connects[0]
        assert connect.client_id == "cooler-1"
        assert connect.clean_session is False
        assert connect.username == (
            "hub.example/cooler-1/?api-version=2021-04-12"
            "&model-id=dtmi%3Aaislehub%3Aretail%3ABeverageCooler%3B1"
        )
        assert connect.password is not None
        token = sas.parse_sas_token(connect.password.decode())
        sas.verify_hub_token(token, "cooler-1", None, [KEY], time.time())
        assert sorted(hub.subscriptions) == sorted(subscriptions("cooler-1"))


async def test_telemetry_json_with_component_and_many_in_flight() -> None:
    async with FakeHub() as hub, make_client(hub) as client:
        await client.send_telemetry({"temperature": 4.5}, {"alert level": "hi/lo"}, "cabinet")
        await asyncio.gather(*(client.send_telemetry(b"%d" % i) for i in range(50)))
    first = hub.telemetry[0]
    bag = first.topic.removeprefix("devices/cooler-1/messages/events/")
    assert bag.startswith("%24.ct=application%2Fjson&%24.ce=utf-8&")
    assert decode_property_bag(bag) == {
        "$.ct": "application/json",
        "$.ce": "utf-8",
        "$.sub": "cabinet",
        "alert level": "hi/lo",
    }
    assert json.loads(first.payload) == {"temperature": 4.5}
    assert sorted(p.payload for p in hub.telemetry[1:]) == sorted(b"%d" % i for i in range(50))


async def test_twin_get_and_reported_patch() -> None:
    async with FakeHub() as hub, make_client(hub) as client:
        twin = await client.get_twin()
        version = await client.patch_reported({"firmwareVersion": "2.3.1"})
    assert twin == hub.twin
    assert version == 2
    assert hub.reported == [{"firmwareVersion": "2.3.1"}]


async def test_methods_answered_by_handler_or_refused() -> None:
    async def on_method(name: str, payload: Any) -> tuple[int, Any]:
        if name == "explode":
            raise RuntimeError("boom")
        return 200, {"echo": payload, "name": name}

    async with FakeHub() as hub, make_client(hub, handlers=Handlers(method=on_method)):
        assert await hub.call_method("reboot", {"x": 1}, "r1") == (
            200,
            {"echo": {"x": 1}, "name": "reboot"},
        )
        status, body = await hub.call_method("explode", None, "r2")
        assert status == 500 and "explode" in body["message"]
    async with FakeHub() as hub, make_client(hub):
        status, _ = await hub.call_method("reboot", {}, "r3")
        assert status == 404


async def test_redelivered_method_request_runs_once() -> None:
    calls: list[str] = []

    async def on_method(name: str, payload: Any) -> tuple[int, Any]:
        calls.append(name)
        return 200, None

    async with FakeHub() as hub, make_client(hub, handlers=Handlers(method=on_method)):
        assert await hub.call_method("defrost", None, "r1", copies=2) == (200, None)
        await asyncio.sleep(0.1)
    assert calls == ["defrost"]


async def test_desired_patch_reaches_handler() -> None:
    seen: list[dict[str, Any]] = []

    async def on_desired(patch: dict[str, Any]) -> None:
        seen.append(patch)

    async with FakeHub() as hub, make_client(hub, handlers=Handlers(desired=on_desired)):
        hub.push_desired({"targetTemperature": 6}, version=7)
        await wait_for(lambda: seen)
    assert seen == [{"targetTemperature": 6, "$version": 7}]


async def test_c2d_message_reaches_handler() -> None:
    seen: list[CloudMessage] = []

    async def on_c2d(message: CloudMessage) -> None:
        seen.append(message)

    async with FakeHub() as hub, make_client(hub, handlers=Handlers(c2d=on_c2d)):
        hub.push_c2d(b"hello", {"$.mid": "m-1", "note": "a/b&c=d"})
        await wait_for(lambda: seen)
    assert seen == [CloudMessage(b"hello", {"$.mid": "m-1", "note": "a/b&c=d"})]


async def test_reconnects_resubscribes_and_delivers_sent_while_down() -> None:
    async with FakeHub() as hub, make_client(hub) as client:
        hub.drop_all()
        await client.send_telemetry(b"during outage")
        assert client.connects == 2
        assert hub.subscriptions.count("$iothub/methods/POST/#") == 2
        assert hub.telemetry[-1].payload == b"during outage"


async def test_unacked_publish_is_resent_with_dup_after_reconnect() -> None:
    async with FakeHub(hold_acks=True) as hub, make_client(hub) as client:
        async with asyncio.TaskGroup() as tg:
            send = tg.create_task(client.send_telemetry(b"precious"))
            await wait_for(lambda: hub.telemetry)
            hub.ack_held()
            hub.drop_all()
        assert send.done()
    assert [(p.payload, p.dup) for p in hub.telemetry] == [
        (b"precious", False),
        (b"precious", True),
    ]


async def test_keep_alive_pings_when_idle() -> None:
    async with FakeHub() as hub, make_client(hub, keep_alive=1) as client:
        before = hub.packets_received()
        await asyncio.sleep(2.0)
        assert hub.packets_received() - before >= 2  # PINGREQs: nothing else was sent
        assert client.connects == 1  # every PINGRESP arrived in time: no reconnect


async def test_bad_credentials_end_the_client() -> None:
    async with FakeHub(connack_code=5) as hub:
        with pytest.raises(ExceptionGroup) as info:
            async with make_client(hub):
                pass
    assert info.group_contains(ConnectRefused)


async def test_provision_registers_polls_and_retries_throttling() -> None:
    async with FakeHub(dps_throttle_once=True) as hub:
        result = await provision(
            "dps.example",
            hub.port,
            "0ne0000TEST",
            "cooler-7",
            KEY,
            None,
            MODEL,
            address="127.0.0.1",
        )
    assert result == ("hub.example", "cooler-7")
    connect = hub.connects[0]
    assert connect.username == "0ne0000TEST/registrations/cooler-7/api-version=2019-03-31"
    assert connect.password is not None
    token = sas.parse_sas_token(connect.password.decode())
    sas.verify_dps_token(token, "0ne0000TEST", "cooler-7", [KEY], time.time())
    assert hub.subscriptions == ["$dps/registrations/res/#"]
    assert hub.dps_requests == [
        "$dps/registrations/PUT/iotdps-register/?$rid=1",
        "$dps/registrations/PUT/iotdps-register/?$rid=2",
        "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=3&operationId=op-1",
    ]
