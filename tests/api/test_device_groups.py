"""Device groups (contract §2.9) and their filter (§5.1) evaluated on the metadata store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from aislehub.hub.twins import apply_reported
from aislehub.store.cloud_properties import CloudValues
from aislehub.store.metadata import Device, Twin
from tests.api.conftest import Api, Env
from tests.api.template_samples import CONTROLLER, controller_template
from tests.api.test_auth_and_errors import assert_error

pytestmark = pytest.mark.anyio

PROVISIONED = f'SELECT * FROM devices WHERE $template = "{CONTROLLER}" AND $provisioned = true'


def group(filter_text: str = PROVISIONED, **more: Any) -> dict[str, Any]:
    return {"displayName": "Provisioned controllers", "filter": filter_text} | more


@pytest.fixture
async def fleet(env: Env, api: Api) -> None:
    """c1, c2 provisioned controllers (c2 simulated), c3 registered only, u1 unassociated."""
    await api.put(f"/deviceTemplates/{CONTROLLER}", json=controller_template())
    for device_id, provisioned, simulated in (("c1", 1, 0), ("c2", 1, 1), ("c3", 0, 0)):
        device = Device("app-a", device_id, device_id.upper(), template=CONTROLLER)
        device.provisioned, device.simulated = bool(provisioned), bool(simulated)
        device.organizations = ["plant-a"] if device_id == "c1" else []
        env.store.put_device(device)
    env.store.put_device(Device("app-a", "u1", "U1"))
    now = datetime.now(UTC)
    for device_id, target in (("c1", 21.5), ("c2", 18)):
        ack = {"value": target, "ac": 200, "av": 2}
        patch = {"thermostat1": {"__t": "c", "targetTemperature": ack}, "fw": f"{device_id}-1.0"}
        env.store.save_twin("app-a", device_id, "", apply_reported(Twin(), patch, now))
    env.store.cloud.save("app-a", "c3", CloudValues({"site": "Lyon"}, {}))
    env.store.put_device(Device("app-b", "b1", "B1", provisioned=True))


async def test_put_get_and_shape(api: Api) -> None:
    resp = await api.put("/deviceGroups/provisioned", json=group(description="Live ones"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body == {
        "id": "provisioned",
        "etag": body["etag"],
        "displayName": "Provisioned controllers",
        "filter": PROVISIONED,
        "description": "Live ones",
        "organizations": [],
    }
    assert (await api.get("/deviceGroups/provisioned")).json() == body


async def test_patch_merges_and_revalidates(api: Api) -> None:
    await api.put("/deviceGroups/g1", json=group())
    resp = await api.patch("/deviceGroups/g1", json={"displayName": "Renamed"})
    assert resp.status_code == 200
    assert resp.json()["displayName"] == "Renamed" and resp.json()["filter"] == PROVISIONED
    bad = await api.patch("/deviceGroups/g1", json={"filter": "SELECT * FROM devices WHERE"})
    assert "position 28" in assert_error(bad, 400, "BadRequest")
    assert (await api.get("/deviceGroups/g1")).json()["filter"] == PROVISIONED


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"filter": PROVISIONED}, "displayName"),
        ({"displayName": "x"}, "filter"),
        (group("SELECT * FROM devices WHERE $provisioned = 'yes'"), "position 44"),
        (group("SELECT * FROM devices WHERE $color = 'red'"), "unknown field '$color'"),
        (group("SELECT * FROM things"), "FROM takes 'devices'"),
        (group(organizations=["a", "b"]), "organizations"),
    ],
)
async def test_invalid_group_is_400(api: Api, body: dict[str, Any], expected: str) -> None:
    message = assert_error(await api.put("/deviceGroups/g1", json=body), 400, "BadRequest")
    assert expected in message


async def test_invalid_id_is_400_and_missing_is_404(api: Api) -> None:
    assert_error(await api.put("/deviceGroups/no%20spaces", json=group()), 400, "BadRequest")
    assert_error(await api.get("/deviceGroups/ghost"), 404, "NotFound")
    assert_error(await api.get("/deviceGroups/ghost/devices"), 404, "NotFound")
    assert_error(await api.patch("/deviceGroups/ghost", json={}), 404, "NotFound")
    assert_error(await api.delete("/deviceGroups/ghost"), 404, "NotFound")


async def test_delete_and_etag(api: Api) -> None:
    etag = (await api.put("/deviceGroups/g1", json=group())).json()["etag"]
    stale = await api.put("/deviceGroups/g1", json=group(etag="old"))
    assert_error(stale, 412, "PreconditionFailed")
    assert (await api.put("/deviceGroups/g1", json=group(etag=etag))).status_code == 200
    resp = await api.delete("/deviceGroups/g1")
    assert resp.status_code == 204 and resp.content == b""


async def test_list_is_paged_and_per_app(env: Env, api: Api) -> None:
    for name in ("a", "b", "c"):
        await api.put(f"/deviceGroups/{name}", json=group())
    first = (await api.get("/deviceGroups", params={"maxpagesize": 2})).json()
    assert [g["id"] for g in first["value"]] == ["a", "b"] and "nextLink" in first
    assert (await env.api_b.get("/deviceGroups")).json() == {"value": []}
    assert_error(await env.api_b.get("/deviceGroups/a/devices"), 404, "NotFound")


@pytest.mark.parametrize(
    ("filter_text", "members"),
    [
        (PROVISIONED, ["c1", "c2"]),
        (f"SELECT * FROM {CONTROLLER}", ["c1", "c2", "c3"]),
        (
            f'SELECT * FROM devices WHERE $template = "{CONTROLLER}" AND $simulated = false',
            ["c1", "c3"],
        ),
        ("SELECT * FROM devices WHERE thermostat1.targetTemperature > 20", ["c1"]),
        ("SELECT * FROM devices WHERE thermostat1.targetTemperature <= 18", ["c2"]),
        ('SELECT * FROM devices WHERE fw = "c2-1.0" OR site = "Lyon"', ["c2", "c3"]),
        ('SELECT * FROM devices WHERE $organizations = "plant-a"', ["c1"]),
        ("SELECT * FROM devices WHERE NOT ($provisioned = true)", ["c3", "u1"]),
        ("select * from devices where $id in ['u1', 'c3', 'b1']", ["c3", "u1"]),
        (
            'SELECT * FROM devices WHERE $displayName != "C1" AND $enabled = true',
            ["c2", "c3", "u1"],
        ),
        ("SELECT * FROM devices WHERE fw = 1", []),
    ],
)
async def test_members_match_the_filter_now(
    fleet: None, env: Env, api: Api, filter_text: str, members: list[str]
) -> None:
    assert (await api.put("/deviceGroups/g1", json=group(filter_text))).status_code == 200
    resp = await api.get("/deviceGroups/g1/devices")
    assert resp.status_code == 200
    assert [d["id"] for d in resp.json()["value"]] == members


async def test_members_are_paged_and_dynamic(fleet: None, env: Env, api: Api) -> None:
    await api.put("/deviceGroups/all", json=group(f"SELECT * FROM {CONTROLLER}"))
    first = (await api.get("/deviceGroups/all/devices", params={"maxpagesize": 2})).json()
    assert [d["id"] for d in first["value"]] == ["c1", "c2"]
    assert first["value"][0]["template"] == CONTROLLER  # full Device bodies
    rest = (await env.client.get(first["nextLink"], headers={"Authorization": api.token})).json()
    assert [d["id"] for d in rest["value"]] == ["c3"]
    await api.patch("/devices/u1", json={"template": CONTROLLER})
    after = (await api.get("/deviceGroups/all/devices")).json()["value"]
    assert [d["id"] for d in after] == ["c1", "c2", "c3", "u1"]
