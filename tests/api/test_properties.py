"""Device, component and module properties (contract §2.3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from aislehub.hub.twins import apply_reported
from tests.api.conftest import Api, Env
from tests.api.test_auth_and_errors import assert_error

pytestmark = pytest.mark.anyio

DESIRED_TOPIC = "$iothub/twin/PATCH/properties/desired/?$version="


def report(env: Env, patch: dict[str, object], device_id: str = "d1", module: str = "") -> None:
    key = ("app-a", device_id, module)
    twin = apply_reported(env.store.get_twin(*key), patch, datetime.now(UTC))
    env.store.save_twin(*key, twin)


async def test_get_shows_reported_with_metadata(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    report(env, {"serialNumber": "SN-1", "thermostat1": {"__t": "c", "maxTemp": 24.1}})
    body = (await api.get("/devices/d1/properties")).json()
    assert body["serialNumber"] == "SN-1"
    assert body["$metadata"]["serialNumber"]["lastUpdateTime"].endswith("Z")
    assert body["thermostat1"]["maxTemp"] == 24.1
    comp = (await api.get("/devices/d1/components/thermostat1/properties")).json()
    assert comp == body["thermostat1"]
    empty = (await api.get("/devices/d1/components/nothing/properties")).json()
    assert empty == {"$metadata": {}}


async def test_patch_is_202_and_reaches_the_device_with_version(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    link = env.attach("d1")
    resp = await api.patch("/devices/d1/properties", json={"fanSpeed": 3})
    assert resp.status_code == 202
    assert resp.json() == {"$metadata": {"fanSpeed": {"desiredValue": 3}}}
    topic, payload = link.published[-1]
    assert topic == DESIRED_TOPIC + "2"
    assert json.loads(payload) == {"fanSpeed": 3, "$version": 2}
    view = (await api.get("/devices/d1/properties")).json()
    assert view["$metadata"]["fanSpeed"] == {"desiredValue": 3, "desiredVersion": 2}


async def test_component_patch_uses_the_pnp_marker(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    link = env.attach("d1")
    resp = await api.patch(
        "/devices/d1/components/thermostat1/properties", json={"targetTemperature": 65.5}
    )
    assert resp.status_code == 202
    assert resp.json() == {"$metadata": {"targetTemperature": {"desiredValue": 65.5}}}
    sent = json.loads(link.published[-1][1])
    assert sent == {"thermostat1": {"__t": "c", "targetTemperature": 65.5}, "$version": 2}
    comp = (await api.get("/devices/d1/components/thermostat1/properties")).json()
    assert comp["$metadata"]["targetTemperature"]["desiredValue"] == 65.5


async def test_device_scope_write_into_a_known_component_nests(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    report(env, {"settings": {"__t": "c", "voltage": 20}})
    resp = await api.patch("/devices/d1/properties", json={"settings": {"voltage": 25}})
    assert resp.json() == {
        "settings": {"$metadata": {"voltage": {"desiredValue": 25}}},
        "$metadata": {},
    }
    assert env.store.get_twin("app-a", "d1", "").desired == {
        "settings": {"__t": "c", "voltage": 25}
    }


async def test_put_replaces_desired_at_its_scope(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    await api.patch("/devices/d1/properties", json={"a": 1, "b": 2})
    resp = await api.put("/devices/d1/properties", json={"b": 3, "$metadata": {"ignored": 1}})
    assert resp.status_code == 202
    assert env.store.get_twin("app-a", "d1", "").desired == {"b": 3}
    await api.patch("/devices/d1/components/c1/properties", json={"x": 1, "y": 2})
    await api.put("/devices/d1/components/c1/properties", json={"y": 5})
    assert env.store.get_twin("app-a", "d1", "").desired["c1"] == {"__t": "c", "y": 5}


async def test_merge_patch_null_removes_a_desired_value(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    await api.patch("/devices/d1/properties", json={"a": 1, "b": 2})
    await api.patch(
        "/devices/d1/properties",
        json={"a": None},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert env.store.get_twin("app-a", "d1", "").desired == {"b": 2}


async def test_module_properties_use_the_module_twin(env: Env, api: Api) -> None:
    await api.put("/devices/edge1", json={})
    link = env.attach("edge1", "camera")
    resp = await api.patch("/devices/edge1/modules/camera/properties", json={"fps": 30})
    assert resp.status_code == 202
    assert json.loads(link.published[-1][1]) == {"fps": 30, "$version": 2}
    assert env.store.get_twin("app-a", "edge1", "camera").desired == {"fps": 30}
    assert env.store.get_twin("app-a", "edge1", "").desired == {}
    report(env, {"status": "running"}, "edge1", "camera")
    view = (await api.get("/devices/edge1/modules/camera/properties")).json()
    assert view["status"] == "running"
    resp = await api.patch(
        "/devices/edge1/modules/camera/components/lens/properties", json={"zoom": 2}
    )
    assert resp.json() == {"$metadata": {"zoom": {"desiredValue": 2}}}
    comp = (await api.get("/devices/edge1/modules/camera/components/lens/properties")).json()
    assert comp["$metadata"]["zoom"]["desiredValue"] == 2


async def test_offline_device_gets_the_patch_stored(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    assert (await api.patch("/devices/d1/properties", json={"a": 1})).status_code == 202
    assert env.store.get_twin("app-a", "d1", "").desired == {"a": 1}


async def test_unknown_device_is_404(api: Api) -> None:
    assert_error(await api.get("/devices/ghost/properties"), 404, "NotFound")
    assert_error(await api.patch("/devices/ghost/properties", json={"a": 1}), 404, "NotFound")
    assert_error(await api.put("/devices/ghost/components/c/properties", json={}), 404, "NotFound")


async def test_non_object_body_is_400(api: Api) -> None:
    await api.put("/devices/d1", json={})
    assert_error(await api.patch("/devices/d1/properties", json=[1]), 400, "BadRequest")
