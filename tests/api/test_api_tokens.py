"""API tokens (contract §2.16)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import ADMIN_ROLE, Api
from tests.api.test_auth_and_errors import assert_error

pytestmark = pytest.mark.anyio

OPERATOR = {"role": "ae2c9854-393b-4f97-8c42-479d70ce626e"}


async def test_put_reveals_the_token_once_and_it_works(api: Api) -> None:
    resp = await api.put("/apiTokens/ci-pipeline", json={"roles": [OPERATOR], "id": "ignored"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["id"] == "ci-pipeline" and body["roles"] == [OPERATOR]
    assert body["token"].startswith("SharedAccessSignature sr=app-a&sig=")
    assert body["token"].endswith(f"&skn=ci-pipeline&se={body['token'].rsplit('=', 1)[1]}")
    expiry = datetime.fromisoformat(body["expiry"])
    assert timedelta(days=364) < expiry - datetime.now(UTC) <= timedelta(days=365)
    assert (await api.get("/devices", token=body["token"])).status_code == 200
    fetched = (await api.get("/apiTokens/ci-pipeline")).json()
    assert fetched == {k: v for k, v in body.items() if k != "token"}
    listed = (await api.get("/apiTokens")).json()["value"]
    assert [t["id"] for t in listed] == ["admin", "ci-pipeline"]
    assert all("token" not in t for t in listed)


async def test_reissuing_an_id_revokes_the_old_token(api: Api) -> None:
    old = (await api.put("/apiTokens/t1", json={"roles": [OPERATOR]})).json()["token"]
    new = (await api.put("/apiTokens/t1", json={"roles": [OPERATOR]})).json()["token"]
    assert old != new
    assert_error(await api.get("/devices", token=old), 401, "Unauthorized")
    assert (await api.get("/devices", token=new)).status_code == 200


async def test_explicit_expiry(api: Api) -> None:
    body = {"roles": [{"role": ADMIN_ROLE}], "expiry": "2099-01-01T00:00:00Z"}
    resp = (await api.put("/apiTokens/t1", json=body)).json()
    assert resp["expiry"] == "2099-01-01T00:00:00.000Z"
    assert resp["token"].endswith("&se=4070908800000")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "BadRequest"),
        ({"roles": []}, 400, "BadRequest"),
        ({"roles": [{"organization": "x"}]}, 400, "BadRequest"),
        ({"roles": [OPERATOR], "expiry": "soon"}, 400, "BadRequest"),
        ({"roles": [OPERATOR], "expiry": "2001-01-01T00:00:00Z"}, 422, "ValidationFailed"),
    ],
)
async def test_invalid_token_body(
    api: Api, body: dict[str, object], status: int, code: str
) -> None:
    assert_error(await api.put("/apiTokens/t1", json=body), status, code)


async def test_invalid_token_id_is_400(api: Api) -> None:
    msg = assert_error(
        await api.put("/apiTokens/a&b", json={"roles": [OPERATOR]}), 400, "BadRequest"
    )
    assert "API token id" in msg


async def test_missing_and_delete(api: Api) -> None:
    assert_error(await api.get("/apiTokens/nope"), 404, "NotFound")
    assert_error(await api.delete("/apiTokens/nope"), 404, "NotFound")
    await api.put("/apiTokens/t1", json={"roles": [OPERATOR]})
    assert (await api.delete("/apiTokens/t1")).status_code == 204
    assert_error(await api.get("/apiTokens/t1"), 404, "NotFound")


async def test_singular_alias(api: Api) -> None:
    resp = await api.put("/apiToken/t1", json={"roles": [OPERATOR]})
    assert resp.status_code == 200 and "token" in resp.json()
    assert (await api.get("/apiToken/t1")).json()["id"] == "t1"
    assert (await api.delete("/apiToken/t1")).status_code == 204
