"""The operator UI in headless Chromium: login, live telemetry, a command, the explorer."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from tests.api.template_samples import controller_template
from tests.browser.conftest import Devices, device_key, sign_in
from tests.servers import Server, wait_until

TEMPLATE = "dtmi:contoso:Controller;1"


def test_login_and_logout(page: Any) -> None:
    page.goto("/")
    page.wait_for_url("**/login")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text().startswith("Wrong user name")
    sign_in(page)
    assert page.locator("h1").inner_text() == "Fleet"
    page.click("text=Sign out")
    page.wait_for_url("**/login")


def test_live_telemetry_and_a_command(page: Any, server: Server, devices: Devices) -> None:
    with server.client() as api:
        api.put(f"/deviceTemplates/{TEMPLATE}", json=controller_template()).raise_for_status()
    key = device_key(server, "ctl-1", {"displayName": "Controller 1", "template": TEMPLATE})
    calls: list[tuple[str, Any]] = []

    async def method(name: str, payload: Any) -> tuple[int, Any]:
        calls.append((name, payload))
        return 200, {"rebootingIn": payload}

    client = devices.connect("ctl-1", key, method)
    sign_in(page)
    page.goto("/devices/ctl-1")
    assert "online" in page.locator("h1").inner_text()
    for value in (101.5, 202.5, 303.5):
        devices.run(client.send_telemetry({"workingSet": value}))
        time.sleep(0.3)
    latest = page.locator("[data-testid='latest-workingSet']")
    latest.wait_for()
    page.wait_for_function(
        "document.querySelector(\"[data-testid='latest-workingSet']\").textContent === '303.5'"
    )
    # One more after the page is open: it arrives without a reload.
    devices.run(client.send_telemetry({"workingSet": 404.5}))
    page.wait_for_function(
        "document.querySelector(\"[data-testid='latest-workingSet']\").textContent === '404.5'"
    )
    form = page.locator("form[data-command='reboot']")
    form.locator("input[name=request]").fill("7")
    form.locator("button").click()
    response = page.locator(".command-response")
    response.wait_for()
    assert response.get_attribute("data-status") == "200"
    assert '"rebootingIn": 7' in response.inner_text()
    assert calls == [("reboot", 7)]


def test_explorer_split_by_device_top_five_and_csv(
    page: Any, server: Server, devices: Devices, tmp_path: Any
) -> None:
    for n in range(1, 9):
        client = devices.connect(f"meter-{n}", device_key(server, f"meter-{n}"))
        for i in range(3):
            devices.run(client.send_telemetry({"load": n * 10 + i}))
    body = {"metric": "load", "aggregation": "max", "range": "PT1H", "grain": "PT1H",
            "splitBy": "device", "limit": 5}  # fmt: skip
    with server.client() as api:

        def stored() -> bool:
            result = api.post("/explorer/query", json=body).json()
            return sum(s["members"] for s in result["series"]) == 8

        assert wait_until(stored, timeout=20)
    sign_in(page)
    page.goto("/explorer")
    page.fill("input[name=metric]", "load")
    page.select_option("select[name=aggregation]", "max")
    page.select_option("select[name=grain]", "PT1H")
    page.select_option("select[name=splitBy]", "device")
    page.select_option("select[name=sort]", "highest")
    page.fill("input[name=limit]", "5")
    page.click("#explorer-form button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#legend li').length === 6")
    names = page.locator("#legend li").evaluate_all("els => els.map(e => e.dataset.series)")
    assert names == ["meter-8", "meter-7", "meter-6", "meter-5", "meter-4", "other"]
    assert page.locator("#chart canvas").count() >= 1
    share = page.locator("#share-url").input_value()
    assert "splitBy" in share and "limit" in share
    with page.expect_download() as download:
        page.click("button[data-export=csv]")
    path = tmp_path / "export.csv"
    download.value.save_as(path)
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == ["time", "meter-8", "meter-7", "meter-6", "meter-5", "meter-4", "other"]
    assert [float(v) for v in rows[1][1:]] == [82.0, 72.0, 62.0, 52.0, 42.0, 32.0]
    # The shared URL runs the same query in a fresh page.
    page.goto(share)
    page.wait_for_function("document.querySelectorAll('#legend li').length === 6")
