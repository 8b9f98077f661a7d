"""Enrollment groups (contract §2.10)."""

from __future__ import annotations

import base64

import pytest

from tests.api.conftest import Api
from tests.api.test_auth_and_errors import assert_error

pytestmark = pytest.mark.anyio

GROUP = {"displayName": "Store sensors", "type": "iot", "attestation": {"type": "symmetricKey"}}


async def test_create_generates_both_keys(api: Api) -> None:
    resp = await api.put("/enrollmentGroups/store-sensors", json=GROUP)
    assert resp.status_code == 200
    body = resp.json()
    keys = body["attestation"]["symmetricKey"]
    assert {k: v for k, v in body.items() if k != "etag"} == {
        "id": "store-sensors",
        "displayName": "Store sensors",
        "enabled": True,
        "type": "iot",
        "attestation": {"type": "symmetricKey", "symmetricKey": keys},
    }
    assert len(base64.b64decode(keys["primaryKey"])) == 32
    assert keys["primaryKey"] != keys["secondaryKey"]
    assert (await api.get("/enrollmentGroups/store-sensors")).json() == body
    assert (await api.get("/enrollmentGroups")).json() == {"value": [body]}


async def test_replace_without_keys_keeps_them(api: Api) -> None:
    first = (await api.put("/enrollmentGroups/g1", json=GROUP)).json()
    again = await api.put("/enrollmentGroups/g1", json={**GROUP, "displayName": "Renamed"})
    assert again.json()["attestation"] == first["attestation"]
    assert again.json()["displayName"] == "Renamed"


async def test_patch_merges(api: Api) -> None:
    first = (await api.put("/enrollmentGroups/g1", json=GROUP)).json()
    resp = await api.patch(
        "/enrollmentGroups/g1",
        json={"enabled": False, "type": "iotEdge"},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["enabled"] is False and body["type"] == "iotEdge"
    assert body["displayName"] == "Store sensors"
    assert body["attestation"] == first["attestation"]


async def test_x509_group_is_stored_without_certificates(api: Api) -> None:
    body = {**GROUP, "attestation": {"type": "x509"}}
    resp = await api.put("/enrollmentGroups/certs", json=body)
    assert resp.json()["attestation"] == {"type": "x509", "x509": {"signingCertificates": {}}}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"type": "iot", "attestation": {"type": "symmetricKey"}}, "displayName"),
        ({"displayName": "x", "attestation": {"type": "symmetricKey"}}, "type"),
        ({**GROUP, "type": "edge"}, "type"),
        ({"displayName": "x", "type": "iot"}, "attestation"),
        ({**GROUP, "attestation": {"type": "tpm"}}, "attestation.type"),
    ],
)
async def test_invalid_group_is_400(api: Api, body: dict[str, object], where: str) -> None:
    msg = assert_error(await api.put("/enrollmentGroups/g1", json=body), 400, "BadRequest")
    assert f"{where}:" in msg


@pytest.mark.parametrize("group_id", ["under_score", "a" * 256, "dot.ted"])
async def test_invalid_group_id_is_400(api: Api, group_id: str) -> None:
    msg = assert_error(
        await api.put(f"/enrollmentGroups/{group_id}", json=GROUP), 400, "BadRequest"
    )
    assert "Enrollment group id" in msg


async def test_missing_and_delete(api: Api) -> None:
    assert_error(await api.get("/enrollmentGroups/nope"), 404, "NotFound")
    assert_error(await api.patch("/enrollmentGroups/nope", json={}), 404, "NotFound")
    await api.put("/enrollmentGroups/g1", json=GROUP)
    assert (await api.delete("/enrollmentGroups/g1")).status_code == 204
    assert_error(await api.delete("/enrollmentGroups/g1"), 404, "NotFound")
