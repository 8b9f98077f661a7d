"""A device with a template: association, discovery (§2.4), typed properties with cloud
properties and acknowledgements (§2.3), typed commands (§2.5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from aislehub.hub.twins import apply_reported
from tests.api.conftest import Api, Env, FakeLink
from tests.api.template_samples import CONTROLLER, controller_template
from tests.api.test_auth_and_errors import assert_error

pytestmark = pytest.mark.anyio

TARGET = "/devices/d1/components/thermostat1/properties"


@pytest.fixture
async def link(env: Env, api: Api) -> FakeLink:
    """Device d1 on the controller template, connected."""
    await api.put(f"/deviceTemplates/{CONTROLLER}", json=controller_template())
    await api.put("/devices/d1", json={"template": CONTROLLER})
    return env.attach("d1")


def report(env: Env, patch: dict[str, Any]) -> None:
    key = ("app-a", "d1", "")
    env.store.save_twin(*key, apply_reported(env.store.get_twin(*key), patch, datetime.now(UTC)))


def desired_sent(link: FakeLink) -> list[dict[str, Any]]:
    return [json.loads(p) for t, p in link.published if t.startswith("$iothub/twin/PATCH")]


# -- association ---------------------------------------------------------------------------
async def test_unknown_template_is_400_and_migration_is_recorded(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    message = assert_error(
        await api.patch("/devices/d1", json={"template": CONTROLLER}), 400, "BadRequest"
    )
    assert CONTROLLER in message
    assert_error(await api.put("/devices/d2", json={"template": "dtmi:no:pe;1"}), 400, "BadRequest")
    assert_error(await api.get("/devices/d2"), 404, "NotFound")
    for template_id in (CONTROLLER, "dtmi:aislehub:test:Other;1"):
        await api.put(f"/deviceTemplates/{template_id}", json=controller_template())
    await api.patch("/devices/d1", json={"template": CONTROLLER})
    moved = await api.patch("/devices/d1", json={"template": "dtmi:aislehub:test:Other;1"})
    assert moved.status_code == 200 and moved.json()["template"] == "dtmi:aislehub:test:Other;1"
    assigned = [d for k, d, _ in env.store.events("app-a", "d1") if k == "templateAssigned"]
    assert assigned == [
        {"template": CONTROLLER, "previous": None, "source": "api"},
        {"template": "dtmi:aislehub:test:Other;1", "previous": CONTROLLER, "source": "api"},
    ]


# -- discovery -----------------------------------------------------------------------------
async def test_components_are_the_template_component_nodes(link: FakeLink, api: Api) -> None:
    resp = await api.get("/devices/d1/components")
    assert resp.status_code == 200
    assert resp.json() == {
        "value": [
            {
                "@type": "Component",
                "name": "thermostat1",
                "displayName": "Thermostat One",
                "schema": "dtmi:com:example:Thermostat;1",
            },
            {
                "@type": "Component",
                "name": "thermostat2",
                "schema": "dtmi:com:example:Thermostat;1",
            },
        ]
    }
    assert (await api.get("/devices/d1/modules")).json() == {"value": []}


async def test_unassociated_device_has_no_components(api: Api) -> None:
    await api.put("/devices/d1", json={})
    assert (await api.get("/devices/d1/components")).json() == {"value": []}
    assert_error(await api.get("/devices/ghost/components"), 404, "NotFound")


async def test_edge_modules_come_from_relationships(env: Env, api: Api) -> None:
    body = controller_template()
    module = {"@type": ["Relationship", "EdgeModule"], "name": "camera", "displayName": "Camera"}
    body["capabilityModel"]["contents"].append(module)
    resp = await api.put(f"/deviceTemplates/{CONTROLLER}", json=body)
    assert resp.status_code == 200, resp.text
    await api.put("/devices/d1", json={"template": CONTROLLER})
    modules = (await api.get("/devices/d1/modules")).json()["value"]
    assert modules == [
        {"@type": ["Relationship", "EdgeModule"], "name": "camera", "displayName": "Camera"}
    ]


# -- typed writable properties -------------------------------------------------------------
async def test_valid_write_reaches_the_device(link: FakeLink, api: Api) -> None:
    resp = await api.patch(TARGET, json={"targetTemperature": 21.5})
    assert resp.status_code == 202
    assert desired_sent(link)[-1] == {
        "thermostat1": {"__t": "c", "targetTemperature": 21.5},
        "$version": 2,
    }


async def test_device_scope_write_nests_template_components(
    env: Env, link: FakeLink, api: Api
) -> None:
    resp = await api.patch("/devices/d1/properties", json={"thermostat2": {"targetTemperature": 3}})
    assert resp.status_code == 202
    assert env.store.get_twin("app-a", "d1").desired == {
        "thermostat2": {"__t": "c", "targetTemperature": 3}
    }


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (TARGET, {"targetTemperature": "hot"}, "targetTemperature: expected double, got string"),
        (TARGET, {"humidity": 1}, "'thermostat1.humidity' is not a property"),
        (TARGET, {"maxTempSinceLastReboot": 1.0}, "is not writable"),
        ("/devices/d1/properties", {"serialNumber": "x"}, "'serialNumber' is not writable"),
        ("/devices/d1/properties", {"thermostat1": 5}, "is a component"),
        ("/devices/d1/properties", {"site": 3}, "site: expected string, got integer"),
        (
            "/devices/d1/properties",
            {"thermostat1": {"targetTemperature": True}, "nope": 1},
            "expected double, got boolean; 'nope' is not a property",
        ),
    ],
)
async def test_bad_writes_are_422_and_never_sent(
    link: FakeLink, api: Api, path: str, body: dict[str, Any], expected: str
) -> None:
    for method in (api.patch, api.put):
        message = assert_error(await method(path, json=body), 422, "ValidationFailed")
        assert expected in message and CONTROLLER in message
    assert desired_sent(link) == []


async def test_unknown_component_is_404(link: FakeLink, api: Api) -> None:
    path = "/devices/d1/components/thermostat9/properties"
    assert_error(await api.patch(path, json={"targetTemperature": 1}), 404, "NotFound")
    assert_error(await api.get(path), 404, "NotFound")


async def test_cloud_properties_stay_in_the_cloud(env: Env, link: FakeLink, api: Api) -> None:
    resp = await api.patch("/devices/d1/properties", json={"site": "Lyon"})
    assert resp.status_code == 202
    assert resp.json() == {"site": "Lyon", "$metadata": {}}
    assert desired_sent(link) == [] and env.store.get_twin("app-a", "d1").desired == {}
    view = (await api.get("/devices/d1/properties")).json()
    assert view["site"] == "Lyon"
    assert view["$metadata"]["site"]["lastUpdateTime"].endswith("Z")
    await api.put("/devices/d1/properties", json={"thermostat1": {"targetTemperature": 2}})
    assert "site" not in (await api.get("/devices/d1/properties")).json()  # PUT replaces
    await api.patch("/devices/d1/properties", json={"site": "Nice"})
    await api.patch("/devices/d1/properties", json={"site": None})
    assert "site" not in (await api.get("/devices/d1/properties")).json()


async def test_acknowledgements_in_metadata_and_status(env: Env, link: FakeLink, api: Api) -> None:
    await api.patch(TARGET, json={"targetTemperature": 21.5})  # desired $version 2
    await api.patch(
        "/devices/d1/components/thermostat2/properties", json={"targetTemperature": 99}
    )  # 3
    status = (await api.get("/devices/d1/properties/status")).json()["value"]
    assert [(s["component"], s["state"]) for s in status] == [
        ("thermostat1", "pending"),
        ("thermostat2", "pending"),
    ]
    report(
        env,
        {
            "thermostat1": {
                "__t": "c",
                "targetTemperature": {"value": 21.5, "ac": 200, "av": 2, "ad": "done"},
            },
            "thermostat2": {
                "__t": "c",
                "targetTemperature": {"value": 20, "ac": 400, "av": 3, "ad": "out of range"},
            },
        },
    )
    view = (await api.get("/devices/d1/properties")).json()
    assert view["thermostat1"]["targetTemperature"] == 21.5  # unwrapped, as IoT Central shows
    meta = view["thermostat2"]["$metadata"]["targetTemperature"]
    assert meta["desiredValue"] == 99 and meta["desiredVersion"] == 3
    assert (meta["ackCode"], meta["ackVersion"], meta["ackDescription"]) == (400, 3, "out of range")
    assert meta["lastUpdateTime"].endswith("Z")
    status = (await api.get("/devices/d1/properties/status")).json()["value"]
    assert status[0] | {"lastUpdateTime": None} == {
        "component": "thermostat1",
        "name": "targetTemperature",
        "state": "accepted",
        "desiredValue": 21.5,
        "desiredVersion": 2,
        "ackCode": 200,
        "ackVersion": 2,
        "ackDescription": "done",
        "lastUpdateTime": None,
    }
    assert status[1]["state"] == "rejected" and status[1]["ackDescription"] == "out of range"
    await api.patch(TARGET, json={"targetTemperature": 22})  # a newer value: pending again
    status = (await api.get("/devices/d1/properties/status")).json()["value"]
    assert status[0]["state"] == "pending" and status[0]["desiredVersion"] == 4


async def test_status_without_template_uses_the_twin(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    await api.patch("/devices/d1/properties", json={"setpoint": 4})
    report(env, {"setpoint": {"value": 4, "ac": 200, "av": 2}})
    status = (await api.get("/devices/d1/properties/status")).json()["value"]
    assert status[0]["name"] == "setpoint" and status[0]["state"] == "accepted"
    view = (await api.get("/devices/d1/properties")).json()
    assert view["setpoint"] == {"value": 4, "ac": 200, "av": 2}  # unmodeled: shown as sent
    assert view["$metadata"]["setpoint"]["ackCode"] == 200
    assert_error(await api.get("/devices/ghost/properties/status"), 404, "NotFound")


# -- typed commands ------------------------------------------------------------------------
async def test_commands_are_checked_before_they_are_sent(link: FakeLink, api: Api) -> None:
    bad = await api.post("/devices/d1/commands/reboot", json={"request": "soon"})
    assert "request: expected integer, got string" in assert_error(bad, 422, "ValidationFailed")
    comp = "/devices/d1/components/thermostat1/commands/getMaxMinReport"
    bad = await api.post(comp, json={"request": "yesterday"})
    assert "not a valid dateTime" in assert_error(bad, 422, "ValidationFailed")
    assert link.published == []
    ok = await api.post("/devices/d1/commands/reboot", json={"request": 5})
    assert ok.status_code == 201 and link.published[-1][1] == b"5"
    ok = await api.post(comp, json={"request": "2024-01-01T00:00:00Z"})
    assert ok.status_code == 201
    assert link.published[-1][0].startswith("$iothub/methods/POST/thermostat1%2AgetMaxMinReport/")
    history = (await api.get(comp)).json()["value"]
    assert history == [ok.json()]


@pytest.mark.parametrize(
    "path",
    [
        "/devices/d1/commands/selfDestruct",
        "/devices/d1/commands/getMaxMinReport",  # a component command, not a root one
        "/devices/d1/components/thermostat9/commands/getMaxMinReport",
        "/devices/d1/components/thermostat1/commands/reboot",
    ],
)
async def test_unknown_command_is_404(link: FakeLink, api: Api, path: str) -> None:
    assert_error(await api.post(path, json={}), 404, "NotFound")
    assert_error(await api.get(path), 404, "NotFound")
    assert link.published == []


async def test_module_components_come_from_the_module_interface(api: Api) -> None:
    body = controller_template()
    sensor = {
        "@id": "dtmi:aislehub:test:Sensor;1",
        "@type": "Interface",
        "contents": [
            {
                "@type": "Component",
                "name": "climate",
                "displayName": "Climate",
                "schema": {
                    "@id": "dtmi:aislehub:test:Climate;1",
                    "@type": "Interface",
                    "contents": [{"@type": "Telemetry", "name": "t", "schema": "double"}],
                },
            }
        ],
    }
    module = {"@type": ["Relationship", "EdgeModule"], "name": "sensor", "target": [sensor]}
    body["capabilityModel"]["contents"].append(module)
    resp = await api.put(f"/deviceTemplates/{CONTROLLER}", json=body)
    assert resp.status_code == 200, resp.text
    await api.put("/devices/d1", json={"template": CONTROLLER})
    components = await api.get("/devices/d1/modules/sensor/components")
    assert components.json() == {
        "value": [
            {
                "@type": "Component",
                "name": "climate",
                "displayName": "Climate",
                "schema": "dtmi:aislehub:test:Climate;1",
            }
        ]
    }
    assert_error(await api.get("/devices/d1/modules/ghost/components"), 404, "NotFound")
