"""Device templates (contract §2.8): CRUD, DTDL validation, versions, ids in paths."""

from __future__ import annotations

from typing import Any

import pytest

from aislehub.store.metadata import Device
from tests.api.conftest import Api, Env
from tests.api.template_samples import CAPABILITY_MODEL, CONTROLLER, controller_template
from tests.api.test_auth_and_errors import assert_error
from tests.models.test_iotcentral import template as iot_central_export

pytestmark = pytest.mark.anyio

PATH = f"/deviceTemplates/{CONTROLLER}"
ENCODED = "/deviceTemplates/dtmi%3Aaislehub%3Atest%3AController%3B1"


async def test_put_creates_and_get_returns_the_stored_template(api: Api) -> None:
    resp = await api.put(PATH, json=controller_template())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert list(body)[:5] == ["@id", "@type", "@context", "displayName", "capabilityModel"]
    assert body["@id"] == CONTROLLER
    assert body["@type"] == ["ModelDefinition", "DeviceModel"]
    assert body["@context"] == ["dtmi:iotcentral:context;2", "dtmi:dtdl:context;2"]
    assert body["capabilityModel"]["@id"] == CAPABILITY_MODEL
    assert isinstance(body["etag"], str) and body["etag"]
    assert (await api.get(PATH)).json() == body


async def test_ids_are_accepted_raw_and_percent_encoded(api: Api) -> None:
    assert (await api.put(ENCODED, json=controller_template())).status_code == 200
    raw = await api.get(PATH)
    assert raw.status_code == 200 and raw.json()["@id"] == CONTROLLER
    assert (await api.get(ENCODED)).json() == raw.json()


async def test_path_id_wins_and_context_defaults(api: Api) -> None:
    body = controller_template(**{"@id": "dtmi:other:id;9"})
    del body["@context"]
    stored = (await api.put(PATH, json=body)).json()
    assert stored["@id"] == CONTROLLER
    assert stored["@context"] == ["dtmi:iotcentral:context;2", "dtmi:dtdl:context;2"]


async def test_views_and_unknown_keys_are_kept_as_given(api: Api) -> None:
    views = [{"@id": "dtmi:x:view;1", "@type": "View", "displayName": "Overview"}]
    stored = (await api.put(PATH, json=controller_template(views=views))).json()
    assert stored["views"] == views


async def test_iot_central_export_imports(api: Api) -> None:
    export = iot_central_export()
    resp = await api.put(f"/deviceTemplates/{export['@id']}", json=export)
    assert resp.status_code == 200, resp.text
    assert resp.json()["capabilityModel"]["extends"][0]["name"] == "contoso_base"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"capabilityModel": {"@type": "Interface"}}, "[id-"),
        ({"@type": ["ModelDefinition"]}, "DeviceModel"),
        ({"capabilityModel": None}, "capabilityModel"),
    ],
)
async def test_invalid_template_is_400_with_path_and_rule(
    api: Api, change: dict[str, Any], expected: str
) -> None:
    body = {k: v for k, v in controller_template(**change).items() if v is not None}
    message = assert_error(await api.put(PATH, json=body), 400, "InvalidDeviceTemplate")
    assert expected in message
    assert_error(await api.get(PATH), 404, "NotFound")


async def test_model_error_names_the_element_and_the_rule(api: Api) -> None:
    body = controller_template()
    body["capabilityModel"]["contents"][1]["name"] = "serial number"
    message = assert_error(await api.put(PATH, json=body), 400, "InvalidDeviceTemplate")
    assert f"{CAPABILITY_MODEL} / contents[1]" in message
    assert "[name-pattern" in message


async def test_bad_template_id_is_400(api: Api) -> None:
    for bad in ("not-a-dtmi", "dtmi:x;0", "dtmi:1bad;1", "dtmi:a;1" + "1" * 600):
        assert_error(await api.put(f"/deviceTemplates/{bad}", json={}), 400, "BadRequest")


async def test_every_write_is_a_new_version_and_old_ones_are_kept(api: Api) -> None:
    first = (await api.put(PATH, json=controller_template())).json()
    second = (await api.put(PATH, json=controller_template(displayName="Two"))).json()
    patched = await api.patch(PATH, json={"description": "A thermostat controller"})
    assert patched.status_code == 200
    assert patched.json()["displayName"] == "Two"
    assert patched.json()["description"] == "A thermostat controller"
    assert len({first["etag"], second["etag"], patched.json()["etag"]}) == 3
    versions = (await api.get(PATH + "/versions")).json()["value"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[2]["document"]["displayName"] == "Controller"
    assert versions[0]["etag"] == patched.json()["etag"]


async def test_patch_replaces_arrays_and_revalidates(api: Api) -> None:
    await api.put(PATH, json=controller_template())
    contents = controller_template()["capabilityModel"]["contents"][:2]
    resp = await api.patch(PATH, json={"capabilityModel": {"contents": contents}})
    assert resp.status_code == 200
    assert len(resp.json()["capabilityModel"]["contents"]) == 2
    broken = [{"@type": "Telemetry", "name": "t"}]  # no schema
    message = assert_error(
        await api.patch(PATH, json={"capabilityModel": {"contents": broken}}),
        400,
        "InvalidDeviceTemplate",
    )
    assert "contents[0] (t)" in message
    assert len((await api.get(PATH)).json()["capabilityModel"]["contents"]) == 2


async def test_etag_mismatch_is_412(api: Api) -> None:
    etag = (await api.put(PATH, json=controller_template())).json()["etag"]
    stale = {"If-Match": '"nope"'}
    assert_error(
        await api.put(PATH, json=controller_template(), headers=stale), 412, "PreconditionFailed"
    )
    assert_error(await api.patch(PATH, json={"etag": "nope"}), 412, "PreconditionFailed")
    ok = await api.patch(PATH, json={"displayName": "X"}, headers={"If-Match": f'"{etag}"'})
    assert ok.status_code == 200


async def test_list_is_paged(env: Env, api: Api) -> None:
    ids = [f"dtmi:aislehub:t{i};1" for i in range(3)]
    for template_id in ids:
        await api.put(f"/deviceTemplates/{template_id}", json=controller_template())
    first = (await api.get("/deviceTemplates", params={"maxpagesize": 2})).json()
    assert [t["@id"] for t in first["value"]] == ids[:2]
    rest = (await env.client.get(first["nextLink"], headers={"Authorization": api.token})).json()
    assert [t["@id"] for t in rest["value"]] == ids[2:] and "nextLink" not in rest


async def test_delete_unused_then_404(api: Api) -> None:
    await api.put(PATH, json=controller_template())
    resp = await api.delete(PATH)
    assert resp.status_code == 204 and resp.content == b""
    assert_error(await api.get(PATH), 404, "NotFound")
    assert_error(await api.get(PATH + "/versions"), 404, "NotFound")
    assert_error(await api.delete(PATH), 404, "NotFound")


async def test_delete_in_use_is_409(api: Api) -> None:
    await api.put(PATH, json=controller_template())
    await api.put("/devices/d1", json={"template": CONTROLLER})
    assert "1 device" in assert_error(await api.delete(PATH), 409, "Conflict")
    await api.patch("/devices/d1", json={"template": None})
    assert (await api.delete(PATH)).status_code == 204


async def test_publishing_assigns_devices_that_announced_the_model(env: Env, api: Api) -> None:
    env.store.put_device(Device("app-a", "early", "early", model_id=CAPABILITY_MODEL))
    env.store.put_device(Device("app-a", "other", "other", model_id="dtmi:else;1"))
    await api.put(PATH, json=controller_template())
    assert (await api.get("/devices/early")).json()["template"] == CONTROLLER
    assert "template" not in (await api.get("/devices/other")).json()
    kinds = [(k, d) for k, d, _ in env.store.events("app-a", "early")]
    assert ("templateAssigned", {"template": CONTROLLER, "source": "templatePublished"}) in kinds


async def test_templates_are_per_app(env: Env, api: Api) -> None:
    await api.put(PATH, json=controller_template())
    assert_error(await env.api_b.get(PATH), 404, "NotFound")
    assert (await env.api_b.get("/deviceTemplates")).json() == {"value": []}
    assert_error(await env.api_b.delete(PATH), 404, "NotFound")
