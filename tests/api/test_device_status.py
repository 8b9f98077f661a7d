"""``/devices/{id}/connectivity`` and ``/devices/{id}/events`` (our extensions)."""

from __future__ import annotations

import time

import pytest

from tests.api.conftest import Api, Env
from tests.api.test_auth_and_errors import assert_error

pytestmark = pytest.mark.anyio


async def kinds(api: Api, device_id: str, **params: object) -> list[str]:
    resp = await api.get(f"/devices/{device_id}/events", params=params)
    assert resp.status_code == 200, resp.text
    return [e["kind"] for e in resp.json()["value"]]


async def test_lifecycle_events_through_the_api(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={"displayName": "Cooler"})
    await api.patch("/devices/d1", json={"displayName": "Cooler 1", "enabled": False})
    await api.patch("/devices/d1", json={"enabled": True})
    expected = ["enabled", "displayNameChanged", "disabled", "registered"]  # newest first
    assert await kinds(api, "d1") == expected
    assert await kinds(api, "d1", kind=["registered", "enabled"]) == ["enabled", "registered"]
    first = (await api.get("/devices/d1/events")).json()["value"][-1]
    assert first["detail"] == {"source": "api", "template": None}
    assert first["timestamp"].endswith("Z")
    await api.delete("/devices/d1")
    assert [k for k, _, _ in env.store.events("app-a", "d1")][-1] == "deleted"


async def test_events_are_paged_and_checked(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    for i in range(4):
        await api.patch("/devices/d1", json={"displayName": f"name {i}"})
    page = (await api.get("/devices/d1/events", params={"maxpagesize": 2})).json()
    assert len(page["value"]) == 2 and "nextLink" in page
    bad = await api.get("/devices/d1/events", params={"kind": "exploded"})
    assert "exploded" in assert_error(bad, 400, "BadRequest")
    assert_error(await env.api_b.get("/devices/d1/events"), 404, "NotFound")


async def test_connectivity(env: Env, api: Api) -> None:
    await api.put("/devices/d1", json={})
    status = (await api.get("/devices/d1/connectivity")).json()
    assert status == {
        "status": "registered",
        "connected": False,
        "connectedModules": [],
        "lastConnectedAt": None,
        "lastDisconnectedAt": None,
        "lastActivityAt": None,
    }
    link = env.attach("d1")
    env.hub.connected(("app-a", "d1", ""), link, resumed=False)
    camera = env.attach("d1", "camera")
    env.hub.connected(("app-a", "d1", "camera"), camera, resumed=False)
    link.active_at = time.time() - 30
    status = (await api.get("/devices/d1/connectivity")).json()
    assert status["connected"] and status["connectedModules"] == ["camera"]
    assert status["lastConnectedAt"] is not None and status["lastDisconnectedAt"] is None
    active = status["lastActivityAt"]
    env.hub.disconnected(("app-a", "d1", ""), link, "connection lost")
    env.hub.disconnected(("app-a", "d1", "camera"), camera, "connection lost")
    status = (await api.get("/devices/d1/connectivity")).json()
    assert not status["connected"] and status["connectedModules"] == []
    assert status["lastDisconnectedAt"] is not None
    assert status["lastActivityAt"] == active  # as recorded at the disconnect
    await api.patch("/devices/d1", json={"enabled": False})
    assert (await api.get("/devices/d1/connectivity")).json()["status"] == "blocked"
    assert await kinds(api, "d1", kind="disconnected") == ["disconnected", "disconnected"]
    assert_error(await env.api_b.get("/devices/d1/connectivity"), 404, "NotFound")
