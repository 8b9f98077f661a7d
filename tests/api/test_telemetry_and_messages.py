"""Telemetry last-known value (contract §2.6), history and C2D messages (our extensions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aislehub.hub.catalog import build_catalog
from tests.api.conftest import Api, Env
from tests.api.template_samples import CONTROLLER, controller_template
from tests.api.test_auth_and_errors import assert_error

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


async def test_latest_value(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    env.telemetry.add("app-a", "d1", "temperature", T0, 20.5)
    env.telemetry.add("app-a", "d1", "temperature", T0 + timedelta(seconds=1), 21.0)
    resp = await api.get("/devices/d1/telemetry/temperature")
    assert resp.status_code == 200
    assert resp.json() == {"value": 21.0, "timestamp": "2024-05-01T12:00:01.123Z"}


async def test_component_and_module_scopes(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    env.telemetry.add("app-a", "d1", "temp", T0, {"c": 1}, component="thermostat1")
    env.telemetry.add("app-a", "d1", "fps", T0, 30, module_id="camera")
    env.telemetry.add("app-a", "d1", "zoom", T0, 2, component="lens", module_id="camera")
    comp = await api.get("/devices/d1/components/thermostat1/telemetry/temp")
    assert comp.json() == {"value": {"c": 1}, "timestamp": "2024-05-01T12:00:00.123Z"}
    assert (await api.get("/devices/d1/modules/camera/telemetry/fps")).json()["value"] == 30
    both = await api.get("/devices/d1/modules/camera/components/lens/telemetry/zoom")
    assert both.json()["value"] == 2
    assert_error(await api.get("/devices/d1/telemetry/temp"), 404, "NotFound")


async def test_never_received_and_unknown_device_are_404(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    assert "never" not in assert_error(await api.get("/devices/d1/telemetry/x"), 404, "NotFound")
    env.telemetry.add("app-b", "ghost", "x", T0, 1)
    assert_error(await api.get("/devices/ghost/telemetry/x"), 404, "NotFound")


async def test_history(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    for i in range(5):
        env.telemetry.add("app-a", "d1", "t", T0 + timedelta(minutes=i), i)
    resp = await api.get(
        "/devices/d1/telemetry/t/history",
        params={"from": "2024-05-01T12:01:00Z", "to": "2024-05-01T12:04:00Z", "limit": 2},
    )
    assert resp.status_code == 200
    assert resp.json() == {
        "value": [
            {"timestamp": "2024-05-01T12:01:00.123Z", "value": 1},
            {"timestamp": "2024-05-01T12:02:00.123Z", "value": 2},
        ]
    }


async def test_history_defaults_to_the_last_day(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    now = datetime.now(UTC)
    env.telemetry.add("app-a", "d1", "t", now - timedelta(days=2), "old")
    env.telemetry.add("app-a", "d1", "t", now - timedelta(hours=1), "new")
    env.telemetry.add("app-a", "d1", "t", now - timedelta(hours=1), "comp", component="c")
    values = (await api.get("/devices/d1/telemetry/t/history")).json()["value"]
    assert [v["value"] for v in values] == ["new"]
    comp = await api.get("/devices/d1/telemetry/t/history", params={"component": "c"})
    assert [v["value"] for v in comp.json()["value"]] == ["comp"]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"to": "2024-13-01T00:00:00Z"},
        {"from": "2024-05-02T00:00:00Z", "to": "2024-05-01T00:00:00Z"},
        {"limit": 0},
        {"limit": 100_001},
    ],
)
async def test_bad_history_parameters_are_400(api: Api, params: dict[str, object]) -> None:
    await api.put("/devices/d1", json={})
    assert_error(await api.get("/devices/d1/telemetry/t/history", params=params), 400, "BadRequest")


async def test_c2d_json_message_is_delivered(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    link = env.attach("d1")
    resp = await api.post(
        "/devices/d1/messages",
        json={"data": {"price": 4.99}, "properties": {"shelf": "A/3"}, "ttlSeconds": 60},
    )
    assert resp.status_code == 202
    seq = resp.json()["id"]
    assert isinstance(seq, int)
    topic, payload = link.published[-1]
    assert topic.startswith("devices/d1/messages/devicebound/")
    assert f"%24.mid={seq}" in topic and "shelf=A%2F3" in topic
    assert "%24.ct=application%2Fjson" in topic
    assert payload == b'{"price":4.99}'


async def test_c2d_text_message_is_queued_for_an_offline_device(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    resp = await api.post("/devices/d1/messages", json={"data": "hello"})
    assert resp.status_code == 202
    pending = env.store.pending_c2d("app-a", "d1", datetime.now(UTC))
    assert [m.payload for m in pending] == [b"hello"]
    assert pending[0].properties == {}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"data": 1, "properties": {"n": 1}}, 400),
        ({"data": 1, "ttlSeconds": 0}, 400),
        ({"data": 1, "ttlSeconds": 48 * 3600 + 1}, 400),
        ({"data": "x" * (64 * 1024 + 1)}, 400),
    ],
)
async def test_invalid_c2d_is_400(api: Api, body: dict[str, object], status: int) -> None:
    await api.put("/devices/d1", json={})
    assert_error(await api.post("/devices/d1/messages", json=body), status, "BadRequest")


async def test_c2d_to_unknown_device_is_404(api: Api) -> None:
    assert_error(await api.post("/devices/ghost/messages", json={"data": 1}), 404, "NotFound")


async def test_typed_device_units_and_unmodeled_fields(env: Env, api: Api) -> None:
    await api.put(f"/deviceTemplates/{CONTROLLER}", json=controller_template())
    await api.put("/devices/t1", json={"template": CONTROLLER})
    env.telemetry.sync_catalog(build_catalog(env.store, env.hub.templates))
    env.telemetry.add("app-a", "t1", "temperature", T0, 21.5, component="thermostat1")
    env.telemetry.add("app-a", "t1", "temperature", T0, "warm", component="thermostat1")
    env.telemetry.add("app-a", "t1", "humidity", T0, 40)  # not in the template
    env.telemetry.add("app-a", "t1", "humidity", T0 + timedelta(seconds=1), 41)
    start = (T0 - timedelta(minutes=1)).isoformat()
    history = await api.get(
        "/devices/t1/telemetry/temperature/history",
        params={"component": "thermostat1", "from": start},
    )
    assert history.json() == {
        "value": [{"timestamp": "2024-05-01T12:00:00.123Z", "value": 21.5}],
        "unit": "degreeCelsius",
    }
    kept = await api.get("/devices/t1/unmodeledTelemetry")
    assert kept.status_code == 200
    body = kept.json()
    assert (body["unknownCount"], body["mistypedCount"]) == (2, 1)
    assert body["value"] == [
        {
            "component": None,
            "module": None,
            "name": "humidity",
            "reason": "unknown",
            "count": 2,
            "lastTimestamp": "2024-05-01T12:00:01.123Z",
            "lastValue": 41,
        },
        {
            "component": "thermostat1",
            "module": None,
            "name": "temperature",
            "reason": "mistyped",
            "count": 1,
            "lastTimestamp": "2024-05-01T12:00:00.123Z",
            "lastValue": "warm",
        },
    ]
    assert (await env.api_b.get("/devices/t1/unmodeledTelemetry")).status_code == 404
