"""The operator UI over ASGI: login, CSRF, pages, command forms, explorer, dashboards."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from aislehub.store.metadata import Device
from aislehub.store.users import User, UserStore
from tests.api.conftest import Env
from tests.api.template_samples import controller_template

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def sign_in(env: Env, name: str = "ops", app_id: str = "app-a") -> str:
    UserStore(env.store.engine).create(User(app_id, name), PASSWORD)
    page = await env.client.get("/login")
    csrf = csrf_of(page)
    form = {"username": name, "password": PASSWORD, "csrf": csrf}
    response = await env.client.post("/login", data=form)
    assert response.status_code == 303 and response.headers["location"] == "/"
    return csrf_of(await env.client.get("/"))


async def test_pages_need_a_session(env: Env) -> None:
    for path in ("/", "/devices", "/explorer", "/alerts"):
        response = await env.client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/login"
    assert (await env.client.get("/healthz")).status_code == 200


async def test_wrong_password_and_missing_csrf_are_refused(env: Env) -> None:
    UserStore(env.store.engine).create(User("app-a", "ops"), PASSWORD)
    page = await env.client.get("/login")
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    bad = {"username": "ops", "password": "nope", "csrf": csrf_of(page)}
    assert (await env.client.post("/login", data=bad)).headers["location"] == "/login?error=invalid"
    no_csrf = {"username": "ops", "password": PASSWORD, "csrf": "forged"}
    assert (await env.client.post("/login", data=no_csrf)).headers["location"].endswith("expired")
    assert (await env.client.get("/")).status_code == 303


async def test_login_overview_logout(env: Env) -> None:
    env.store.put_device(Device("app-a", "cooler-1", "Cooler 1"))
    env.attach("cooler-1")
    csrf = await sign_in(env)
    home = await env.client.get("/")
    assert 'data-kpi="online"><span class="value">1<' in home.text
    assert (await env.client.post("/logout")).status_code == 403  # no CSRF token
    out = await env.client.post("/logout", data={"csrf": csrf})
    assert out.status_code == 303
    assert (await env.client.get("/")).status_code == 303


async def test_device_list_filters_and_pages(env: Env) -> None:
    for n in range(30):
        env.store.put_device(Device("app-a", f"dev-{n:02d}", f"Device {n}"))
    env.store.put_device(Device("app-b", "theirs", "Theirs"))
    await sign_in(env)
    first = await env.client.get("/devices")
    assert first.text.count("data-device=") == 25 and "Next" in first.text
    assert "theirs" not in first.text
    found = await env.client.get("/devices?q=dev-2", headers={"HX-Request": "true"})
    assert found.text.count("data-device=") == 10 and "<html" not in found.text
    env.attach("dev-07")
    online = await env.client.get("/devices?status=online")
    assert online.text.count("data-device=") == 1


async def test_device_page_and_command_form(env: Env) -> None:
    await env.api.put("/deviceTemplates/dtmi:contoso:Controller;1", json=controller_template())
    env.store.put_device(Device("app-a", "ctl", "Controller", "dtmi:contoso:Controller;1"))
    env.attach("ctl")
    csrf = await sign_in(env)
    page = await env.client.get("/devices/ctl")
    assert page.status_code == 200
    forms = re.findall(r'data-command="([^"]+)"', page.text)
    assert forms, page.text
    path = forms[0]
    response = await env.client.post(
        f"/devices/ctl/commands/{path}", data=_fill(page.text), headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 200
    assert 'data-status="200"' in response.text and "ok" in response.text
    other = await env.client.get("/devices/theirs")
    assert other.status_code == 404


async def test_explorer_endpoints_use_the_session_app(env: Env) -> None:
    env.store.put_device(Device("app-a", "d1", "d1"))
    env.telemetry.add("app-a", "d1", "temp", datetime.now(UTC), 4.0)
    env.telemetry.add("app-b", "x", "temp", datetime.now(UTC), 99.0)
    csrf = await sign_in(env)
    body = {"metric": "temp", "aggregation": "max", "range": "PT1H", "splitBy": "device"}
    refused = await env.client.post("/explorer/query", json=body)
    assert refused.status_code == 403
    response = await env.client.post("/explorer/query", json=body, headers={"X-CSRF-Token": csrf})
    assert [s["name"] for s in response.json()["series"]] == ["d1"]
    form = {"query": '{"metric": "temp", "range": "PT1H"}', "csrf": csrf}
    csv = await env.client.post("/explorer/export?format=csv", data=form)
    assert csv.text.startswith("time,temp\n")
    assert (await env.client.get("/explorer")).status_code == 200


async def test_dashboard_tiles(env: Env) -> None:
    env.store.put_device(Device("app-a", "c1", "c1"))
    env.telemetry.add("app-a", "c1", "location", datetime.now(UTC), {"lat": 47.6, "lon": -122.3})
    env.telemetry.add("app-a", "c1", "temperature", datetime.now(UTC), 4.5)
    dashboard = {
        "displayName": "Coolers",
        "tiles": [
            {"type": "kpi", "title": "Online", "metric": "devicesOnline"},
            {"type": "lineChart", "title": "Temperature", "telemetry": ["temperature"]},
            {"type": "lkv", "title": "Latest", "telemetry": ["temperature"]},
            {"type": "map", "title": "Where", "location": "location"},
            {"type": "alerts", "title": "Alerts"},
            {"type": "table", "title": "Fleet", "columns": ["$id", "temperature"]},
            {"type": "markdown", "title": "Note"},
        ],
    }
    put = await env.api.put("/dashboards/coolers", json=dashboard)
    assert put.status_code == 200 and put.json()["id"] == "coolers"
    listed = await env.api.get("/dashboards")
    assert [d["id"] for d in listed.json()["value"]] == ["coolers"]
    assert (await env.api_b.get("/dashboards/coolers")).status_code == 404
    await sign_in(env)
    page = await env.client.get("/dashboards/coolers")
    assert page.status_code == 200
    assert page.text.count("data-tile=") == 7 and "<circle" in page.text and "4.5" in page.text
    assert '<p class="kpi-value">0</p>' in page.text  # c1 is offline
    env.attach("c1")
    page = await env.client.get("/dashboards/coolers")
    assert '<p class="kpi-value">1</p>' in page.text


async def test_users_api(env: Env) -> None:
    created = await env.api.put("/users/alice", json={"password": PASSWORD})
    assert created.status_code == 201 and "password" not in created.text
    assert (await env.api_b.put("/users/alice", json={"password": PASSWORD})).status_code == 409
    assert (await env.api.put("/users/bob", json={"password": "short"})).status_code == 400
    assert [u["name"] for u in (await env.api.get("/users")).json()["value"]] == ["alice"]
    assert (await env.api_b.get("/users")).json()["value"] == []


def _fill(page: str) -> dict[str, str]:
    """Values for the first command form's inputs."""
    form = page.split('data-command="', 1)[1].split("</form>", 1)[0]
    values = {}
    for match in re.finditer(r'<(input|select|textarea)([^>]*)name="([^"]+)"([^>]*)>', form):
        attrs = match.group(2) + match.group(4)
        values[match.group(3)] = "1" if 'type="number"' in attrs else "x"
    return values


async def test_alerts_inbox_acknowledge_and_resolve(env: Env) -> None:
    from aislehub.store import schema

    row = {"id": "a1", "app_id": "app-a", "rule_id": "too-warm", "device_id": "c1"}
    row |= {"severity": "warning", "state": "open", "opened_at": datetime.now(UTC), "detail": {}}
    with env.store.engine.begin() as conn:
        conn.execute(schema.alerts.insert().values(row))
        conn.execute(schema.alerts.insert().values({**row, "id": "b1", "app_id": "app-b"}))
    csrf = await sign_in(env)
    home = await env.client.get("/")
    assert 'data-kpi="openAlerts"><a href="/alerts"><span class="value">1<' in home.text
    page = await env.client.get("/alerts")
    assert 'data-alert="a1"' in page.text and 'data-alert="b1"' not in page.text
    assert "Acknowledge" in page.text
    done = await env.client.post("/alerts/a1/acknowledge", data={"csrf": csrf})
    assert done.status_code == 303
    assert "acknowledged" in (await env.client.get("/alerts")).text
    assert (await env.client.post("/alerts/b1/resolve", data={"csrf": csrf})).status_code == 404
    await env.client.post("/alerts/a1/resolve", data={"csrf": csrf})
    assert 'class="value">0<' in (await env.client.get("/")).text
