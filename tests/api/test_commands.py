"""Commands: run (201) and history (contract §2.5)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.api.conftest import Api, Env
from tests.api.test_auth_and_errors import assert_error

pytestmark = pytest.mark.anyio


async def test_run_returns_201_with_the_device_answer(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    link = env.attach("d1")
    resp = await api.post("/devices/d1/commands/reboot", json={"request": {"delay": 5}})
    assert resp.status_code == 201
    body = resp.json()
    assert uuid.UUID(body["id"])
    assert body == {
        "id": body["id"],
        "connectionTimeout": 0,
        "responseTimeout": 30,
        "request": {"delay": 5},
        "response": {"ok": True},
        "responseCode": 200,
    }
    topic, payload = link.published[-1]
    assert topic.startswith("$iothub/methods/POST/reboot/?$rid=")
    assert payload == b'{"delay":5}'
    history = await api.get("/devices/d1/commands/reboot")
    assert history.status_code == 200 and history.json() == {"value": [body]}


async def test_history_keeps_the_latest_run(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    env.attach("d1")
    await api.post("/devices/d1/commands/reboot", json={"request": 1})
    last = (await api.post("/devices/d1/commands/reboot", json={"request": 2})).json()
    assert (await api.get("/devices/d1/commands/reboot")).json()["value"][0] == last


async def test_parameterless_command_without_body(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    link = env.attach("d1")
    body = (await api.post("/devices/d1/commands/ping")).json()
    assert "request" not in body and body["responseCode"] == 200
    assert link.published[-1][1] == b""


async def test_component_command_is_the_pnp_method(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    link = env.attach("d1")
    resp = await api.post(
        "/devices/d1/components/thermostat1/commands/getMaxMinReport",
        json={"request": "2024-01-01T00:00:00Z"},
    )
    assert resp.status_code == 201
    assert link.published[-1][0].startswith(
        "$iothub/methods/POST/thermostat1%2AgetMaxMinReport/?$rid="
    )
    history = await api.get("/devices/d1/components/thermostat1/commands/getMaxMinReport")
    assert history.json()["value"] == [resp.json()]
    assert (await api.get("/devices/d1/commands/getMaxMinReport")).json() == {"value": []}


async def test_module_command_goes_to_the_module(env: Env, api: Api) -> None:
    await api.put("/devices/edge1", json={})
    link = env.attach("edge1", "camera")
    resp = await api.post("/devices/edge1/modules/camera/commands/snap", json={})
    assert resp.status_code == 201
    assert link.published[-1][0].startswith("$iothub/methods/POST/snap/")
    history = await api.get("/devices/edge1/modules/camera/commands/snap")
    assert history.json()["value"] == [resp.json()]


async def test_offline_device_is_404_device_not_online(api: Api) -> None:
    await api.put("/devices/d1", json={})
    resp = await api.post("/devices/d1/commands/reboot", json={})
    assert "not connected" in assert_error(resp, 404, "DeviceNotOnline")


async def test_silent_device_is_504(env: Env, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    await api.put("/devices/d1", json={})
    env.attach("d1", answer=False)
    real_invoke = env.hub.methods.invoke

    async def quick(*args: object, **kwargs: object) -> object:
        kwargs["response_timeout"] = 0.01  # keep the test fast; the API asks for >= 5 s
        return await real_invoke(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(env.hub.methods, "invoke", quick)
    resp = await api.post("/devices/d1/commands/reboot", json={"responseTimeout": 5})
    assert "did not answer" in assert_error(resp, 504, "GatewayTimeout")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"connectionTimeout": 31}, "connectionTimeout"),
        ({"connectionTimeout": -1}, "connectionTimeout"),
        ({"responseTimeout": 4}, "responseTimeout"),
        ({"responseTimeout": 31}, "responseTimeout"),
        ({"responseTimeout": "10"}, "responseTimeout"),
    ],
)
async def test_timeouts_out_of_range_are_400(api: Api, body: dict[str, object], where: str) -> None:
    await api.put("/devices/d1", json={})
    msg = assert_error(await api.post("/devices/d1/commands/x", json=body), 400, "BadRequest")
    assert where in msg


async def test_unknown_device_is_404(api: Api) -> None:
    assert_error(await api.post("/devices/ghost/commands/x", json={}), 404, "NotFound")
    assert_error(await api.get("/devices/ghost/commands/x"), 404, "NotFound")


async def test_connection_timeout_waits_for_the_device(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    asyncio.get_running_loop().call_later(0.05, env.attach, "d1")
    resp = await api.post("/devices/d1/commands/reboot", json={"connectionTimeout": 1})
    assert resp.status_code == 201 and resp.json()["connectionTimeout"] == 1
