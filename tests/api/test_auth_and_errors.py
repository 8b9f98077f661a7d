"""Auth, api-version, the one error shape, and tenant isolation (contract §1.2, §1.4, §1.5)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest

from aislehub.api import tokens
from tests.api.conftest import Api, Env, make_token

pytestmark = pytest.mark.anyio


def assert_error(resp: httpx.Response, status: int, code: str) -> str:
    """The IoT Central error shape; returns the message."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "requestId", "time"}
    assert error["code"] == code
    assert resp.headers["x-ms-error-code"] == code
    assert resp.headers["x-ms-request-id"] == error["requestId"]
    assert uuid.UUID(error["requestId"]).version == 4
    assert error["time"].endswith(" GMT") and parsedate_to_datetime(error["time"])
    assert error["message"]
    return str(error["message"])


async def test_missing_token_is_401(api: Api) -> None:
    assert "missing" in assert_error(await api.get("/devices", token=None), 401, "Unauthorized")


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
        "SharedAccessSignature sr=app-a&sig=forged&skn=admin&se=4102444800000",
    ],
)
async def test_garbage_token_is_401(api: Api, header: str) -> None:
    assert_error(await api.get("/devices", token=header), 401, "Unauthorized")


async def test_expired_token_is_401(env: Env) -> None:
    token = make_token(env.store, "app-a", "old", expiry=timedelta(milliseconds=-1))
    resp = await env.api.get("/devices", token=token)
    assert "expired" in assert_error(resp, 401, "Unauthorized")


async def test_deleted_token_is_401(env: Env, api: Api) -> None:
    token = make_token(env.store, "app-a", "temp")
    assert (await api.get("/devices", token=token)).status_code == 200
    assert (await api.delete("/apiTokens/temp")).status_code == 204
    assert_error(await api.get("/devices", token=token), 401, "Unauthorized")


async def test_token_layout_and_hash(env: Env) -> None:
    token = make_token(env.store, "app-a", "ci-pipeline")
    assert token.startswith("SharedAccessSignature sr=app-a&sig=")
    fields = dict(p.split("=", 1) for p in token.removeprefix("SharedAccessSignature ").split("&"))
    assert list(fields) == ["sr", "sig", "skn", "se"]
    assert fields["skn"] == "ci-pipeline" and len(fields["se"]) == 13
    stored = env.store.token_by_hash(hashlib.sha256(token.encode()).hexdigest())
    assert stored is not None and stored.id == "ci-pipeline"
    assert tokens.to_millis(stored.expiry) == int(fields["se"])


async def test_api_version_missing_or_unknown_is_400(api: Api) -> None:
    msg = assert_error(await api.get("/devices", version=None), 400, "InvalidApiVersion")
    assert "api-version" in msg and "required" in msg
    msg = assert_error(await api.get("/devices", version="2023-01-01"), 400, "InvalidApiVersion")
    assert "2023-01-01" in msg and "2022-07-31" in msg


@pytest.mark.parametrize(
    "version",
    [
        "2022-07-31",
        "2022-05-31",
        "1.0",
        "2022-10-31-preview",
        "2022-06-30-preview",
        "1.2-preview",
        "1.1-preview",
    ],
)
async def test_published_api_versions_are_accepted(api: Api, version: str) -> None:
    assert (await api.get("/devices", version=version)).status_code == 200


async def test_unknown_route_and_wrong_method(api: Api) -> None:
    assert_error(await api.get("/nothingHere"), 404, "NotFound")
    resp = await api.post("/devices")
    assert_error(resp, 405, "MethodNotAllowed")
    assert "GET" in resp.headers["allow"]


async def test_malformed_json_is_400(api: Api) -> None:
    resp = await api.put(
        "/devices/d1", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in assert_error(resp, 400, "BadRequest")


async def test_non_json_body_is_400(api: Api) -> None:
    resp = await api.put("/devices/d1", content=b"a=b", headers={"content-type": "text/plain"})
    assert "application/json" in assert_error(resp, 400, "BadRequest")


async def test_body_without_content_type_is_read_as_json(api: Api) -> None:
    resp = await api.put("/devices/d1", content=b'{"displayName": "One"}')
    assert resp.status_code == 200 and resp.json()["displayName"] == "One"


async def test_errors_are_counted(env: Env, api: Api) -> None:
    await api.get("/devices", token=None)
    await api.get("/devices/nope")
    assert env.metrics.value("api_errors_total", code="Unauthorized") == 1
    assert env.metrics.value("api_errors_total", code="NotFound") == 1


async def test_unhandled_error_is_500_in_shape(
    env: Env, api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(env.store, "get_device", boom)
    msg = assert_error(await api.get("/devices/d1"), 500, "InternalServerError")
    assert "kaboom" not in msg
    assert any(r.exc_info and "kaboom" in str(r.exc_info[1]) for r in caplog.records)


async def test_success_carries_request_id_and_no_error_key(api: Api) -> None:
    resp = await api.put("/devices/d1", json={})
    assert uuid.UUID(resp.headers["x-ms-request-id"])
    assert "error" not in resp.json()


async def test_tenant_isolation(env: Env) -> None:
    a, b = env.api, env.api_b
    assert (await a.put("/devices/shared-name", json={"displayName": "A's"})).status_code == 200
    assert_error(await b.get("/devices/shared-name"), 404, "NotFound")
    assert (await b.get("/devices")).json() == {"value": []}
    assert_error(await b.patch("/devices/shared-name", json={"enabled": False}), 404, "NotFound")
    assert_error(await b.delete("/devices/shared-name"), 404, "NotFound")
    assert_error(await b.get("/devices/shared-name/properties"), 404, "NotFound")
    assert_error(await b.post("/devices/shared-name/commands/reboot", json={}), 404, "NotFound")
    assert (await b.put("/devices/shared-name", json={"displayName": "B's"})).status_code == 200
    assert (await a.get("/devices/shared-name")).json()["displayName"] == "A's"
    assert [t["id"] for t in (await b.get("/apiTokens")).json()["value"]] == ["admin"]


async def test_healthz_metrics_and_openapi(env: Env) -> None:
    assert (await env.client.get("/healthz")).json() == {"status": "ok"}
    await env.api.get("/devices", token=None)
    resp = await env.client.get("/metrics")
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'aislehub_api_errors_total{code="Unauthorized"} 1' in resp.text
    spec = (await env.client.get("/openapi.json")).json()
    assert "/api/devices/{deviceId}" in spec["paths"]
    put_device = spec["paths"]["/api/devices/{deviceId}"]["put"]["responses"]
    assert set(put_device) == {"200", "default"}
    assert spec["components"]["schemas"]["Error"]["required"] == ["error"]
    assert (await env.client.get("/docs")).status_code == 200
