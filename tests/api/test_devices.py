"""Devices, attestation and credentials (contract §2.1, §2.2), paging (§1.6)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest

from aislehub.hub.auth import DEFAULT_GROUP
from aislehub.protocol import sas
from tests.api.conftest import BASE_URL, Api, Env
from tests.api.template_samples import controller_template
from tests.api.test_auth_and_errors import assert_error

pytestmark = pytest.mark.anyio

KEY = base64.b64encode(b"k" * 32).decode()


async def test_put_bare_creates_enabled_unassociated_device(api: Api) -> None:
    resp = await api.put("/devices/therm-01", json={})
    assert resp.status_code == 200
    body = resp.json()
    assert body == {
        "id": "therm-01",
        "etag": body["etag"],
        "displayName": "therm-01",
        "enabled": True,
        "provisioned": False,
        "simulated": False,
        "organizations": [],
    }
    assert (await api.get("/devices/therm-01")).json() == body


async def test_put_replaces_and_ignores_read_only_fields(api: Api) -> None:
    await api.put("/deviceTemplates/dtmi:contoso:Thermostat;1", json=controller_template())
    body = {
        "id": "other",
        "provisioned": True,
        "displayName": "Boiler room",
        "template": "dtmi:contoso:Thermostat;1",
        "simulated": True,
        "organizations": ["plant-a"],
    }
    created = (await api.put("/devices/therm-01", json=body)).json()
    assert created["id"] == "therm-01" and created["provisioned"] is False
    assert created["template"] == "dtmi:contoso:Thermostat;1"
    replaced = (await api.put("/devices/therm-01", json={"displayName": "New"})).json()
    assert "template" not in replaced and replaced["simulated"] is False
    assert replaced["etag"] != created["etag"]


async def test_patch_is_a_merge_patch(api: Api) -> None:
    await api.put("/deviceTemplates/dtmi:x;1", json=controller_template())
    await api.put(
        "/devices/d1",
        json={"displayName": "One", "template": "dtmi:x;1", "organizations": ["plant-a"]},
    )
    resp = await api.patch(
        "/devices/d1",
        json={"simulated": True, "template": None},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["displayName"] == "One" and body["simulated"] is True
    assert "template" not in body and body["organizations"] == ["plant-a"]
    patched = (await api.patch("/devices/d1", json={"organizations": []})).json()
    assert patched["organizations"] == []


async def test_patch_unknown_device_is_404(api: Api) -> None:
    assert_error(await api.patch("/devices/ghost", json={"enabled": False}), 404, "NotFound")


async def test_delete(api: Api) -> None:
    await api.put("/devices/d1", json={})
    resp = await api.delete("/devices/d1")
    assert resp.status_code == 204 and resp.content == b""
    assert_error(await api.get("/devices/d1"), 404, "NotFound")
    assert_error(await api.delete("/devices/d1"), 404, "NotFound")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"enabled": "yes"}, "enabled"),
        ({"displayName": 5}, "displayName"),
        ({"organizations": ["a", "b"]}, "organizations"),
        ({"displayName": ""}, "displayName"),
    ],
)
async def test_invalid_device_body_is_400(api: Api, body: dict[str, object], where: str) -> None:
    assert where in assert_error(await api.put("/devices/d1", json=body), 400, "BadRequest")


async def test_invalid_patch_result_is_400(api: Api) -> None:
    await api.put("/devices/d1", json={})
    msg = assert_error(await api.patch("/devices/d1", json={"simulated": 1}), 400, "BadRequest")
    assert "simulated" in msg


@pytest.mark.parametrize("device_id", ["a" * 129, "semi;colon", "white space", "tilde~", 'qu"ote'])
async def test_invalid_device_id_is_400(api: Api, device_id: str) -> None:
    msg = assert_error(await api.put(f"/devices/{device_id}", json={}), 400, "BadRequest")
    assert "Device id" in msg


async def test_device_id_with_allowed_punctuation(api: Api) -> None:
    device_id = "a-b.c_d:e=f@g$h'i(j)k,l!m*n"
    assert (await api.put(f"/devices/{device_id}", json={})).json()["id"] == device_id


async def test_stale_etag_is_412(api: Api) -> None:
    etag = (await api.put("/devices/d1", json={})).json()["etag"]
    await api.patch("/devices/d1", json={"displayName": "changed"})
    stale = await api.patch("/devices/d1", json={"simulated": True}, headers={"If-Match": etag})
    assert_error(stale, 412, "PreconditionFailed")
    assert_error(await api.put("/devices/d1", json={"etag": etag}), 412, "PreconditionFailed")
    current = (await api.get("/devices/d1")).json()["etag"]
    ok = await api.patch(
        "/devices/d1", json={"simulated": True}, headers={"If-Match": f'"{current}"'}
    )
    assert ok.status_code == 200


async def test_blocking_a_device_closes_its_link(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    link = env.attach("d1")
    body = (await api.patch("/devices/d1", json={"enabled": False})).json()
    assert body["enabled"] is False
    assert link.closed == "device blocked"


async def test_deleting_a_device_closes_its_link(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    link = env.attach("d1")
    await api.delete("/devices/d1")
    assert link.closed == "device deleted"


async def test_list_pages_with_next_link_followed_verbatim(env: Env, api: Api) -> None:
    ids = [f"dev-{i:02}" for i in range(7)]
    for device_id in ids:
        await api.put(f"/devices/{device_id}", json={})
    seen: list[str] = []
    resp = await api.get("/devices", params={"maxpagesize": 3})
    pages = 1
    while "nextLink" in resp.json():
        link = resp.json()["nextLink"]
        assert link.startswith(f"{BASE_URL}/api/devices?")
        query = parse_qs(urlsplit(link).query)
        assert query["api-version"] == ["2022-07-31"] and query["maxpagesize"] == ["3"]
        assert "$skiptoken" in query
        seen += [d["id"] for d in resp.json()["value"]]
        resp = await env.client.get(link, headers={"Authorization": api.token})
        pages += 1
    seen += [d["id"] for d in resp.json()["value"]]
    assert seen == ids and pages == 3


async def test_default_page_size_is_25(api: Api) -> None:
    for i in range(26):
        await api.put(f"/devices/d{i:02}", json={})
    first = (await api.get("/devices")).json()
    assert len(first["value"]) == 25 and "nextLink" in first


@pytest.mark.parametrize(
    "params",
    [{"maxpagesize": 0}, {"maxpagesize": 101}, {"maxpagesize": "x"}, {"$skiptoken": "garbage!"}],
)
async def test_bad_paging_parameters_are_400(api: Api, params: dict[str, object]) -> None:
    assert_error(await api.get("/devices", params=params), 400, "BadRequest")


async def test_attestation_roundtrip(api: Api) -> None:
    await api.put("/devices/d1", json={})
    assert_error(await api.get("/devices/d1/attestation"), 404, "NotFound")
    created = await api.put("/devices/d1/attestation", json={"type": "symmetricKey"})
    assert created.status_code == 200
    keys = created.json()["symmetricKey"]
    assert len(base64.b64decode(keys["primaryKey"])) == 32 and keys["secondaryKey"]
    assert (await api.get("/devices/d1/attestation")).json() == created.json()
    patched = await api.patch(
        "/devices/d1/attestation", json={"symmetricKey": {"secondaryKey": KEY}}
    )
    assert patched.json()["symmetricKey"] == {"primaryKey": keys["primaryKey"], "secondaryKey": KEY}
    assert (await api.delete("/devices/d1/attestation")).status_code == 204
    assert_error(await api.get("/devices/d1/attestation"), 404, "NotFound")


async def test_attestation_validation(api: Api) -> None:
    await api.put("/devices/d1", json={})
    assert_error(
        await api.put("/devices/d1/attestation", json={"type": "x509"}), 422, "ValidationFailed"
    )
    bad_key = {"type": "symmetricKey", "symmetricKey": {"primaryKey": "not base64!"}}
    msg = assert_error(await api.put("/devices/d1/attestation", json=bad_key), 400, "BadRequest")
    assert "primaryKey" in msg
    assert_error(await api.put("/devices/d1/attestation", json={}), 400, "BadRequest")
    assert_error(
        await api.put("/devices/nope/attestation", json={"type": "symmetricKey"}), 404, "NotFound"
    )


async def test_credentials_individual_keys(api: Api) -> None:
    await api.put("/devices/d1", json={})
    att = {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}}
    await api.put("/devices/d1/attestation", json=att)
    creds = (await api.get("/devices/d1/credentials")).json()
    assert creds == {"idScope": "0ne000000A1", "symmetricKey": att["symmetricKey"]}


async def test_credentials_derived_from_default_group(api: Api) -> None:
    group = await api.put(
        f"/enrollmentGroups/{DEFAULT_GROUP}",
        json={
            "displayName": "SAS IoT devices",
            "type": "iot",
            "attestation": {"type": "symmetricKey"},
        },
    )
    group_keys = group.json()["attestation"]["symmetricKey"]
    await api.put("/devices/d1", json={})
    creds = (await api.get("/devices/d1/credentials")).json()
    assert creds["idScope"] == "0ne000000A1"
    assert creds["symmetricKey"] == {
        "primaryKey": sas.derive_device_key(group_keys["primaryKey"], "d1"),
        "secondaryKey": sas.derive_device_key(group_keys["secondaryKey"], "d1"),
    }


async def test_credentials_without_any_group_give_only_the_scope(api: Api) -> None:
    await api.put("/devices/d1", json={})
    assert (await api.get("/devices/d1/credentials")).json() == {"idScope": "0ne000000A1"}
