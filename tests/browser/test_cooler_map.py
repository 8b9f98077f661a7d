"""The cooler dashboard finds the cooler the simulator moved: a demo-like app (the
connected-cooler template, its rules and dashboard loaded through the API as ``aislehub
demo`` loads them, four simulated coolers at their outlets, one moved 900 m by the
simulator's ``coolerMoved`` fault) seen in headless Chromium."""

from __future__ import annotations

from typing import Any

from aislehub.simulator.device import SimClock, SimulatedDevice
from aislehub.simulator.physics import build_model
from aislehub.simulator.profile import FaultRecord, load_profile, plan_devices
from aislehub.templates import load
from tests.browser.conftest import Devices, device_key, sign_in
from tests.servers import Server, wait_until

MOVED = "cooler-003"


def test_the_moved_cooler_is_marked_on_the_cooler_dashboard(
    page: Any, server: Server, devices: Devices
) -> None:
    app = load("connected-cooler")
    with server.client() as api:
        api.put(f"/deviceTemplates/{app.template_id}", json=app.template).raise_for_status()
        for rule in app.rules:
            api.put(f"/rules/{rule['id']}", json=rule).raise_for_status()
        api.put(f"/dashboards/{app.dashboard['id']}", json=app.dashboard).raise_for_status()

    profile = load_profile(app.simulator)
    clock = SimClock()
    moved = FaultRecord(MOVED, "coolerMoved", clock.start - 1, None, {"distanceMeters": 900})
    for plan in plan_devices(profile, 4, seed=3):
        model = build_model(profile.model, profile.physics, plan, [moved], clock.start)
        key = device_key(
            server, plan.device_id, {"displayName": plan.device_id, "template": app.template_id}
        )
        with server.client() as api:  # what the demo's operator records: outlet and place
            api.patch(f"/devices/{plan.device_id}/properties", json=model.cloud_properties())
        client = devices.connect(plan.device_id, key)
        devices.run(SimulatedDevice(model, clock).tick(client))

    def moved_alert() -> Any:
        with server.client() as api:
            found = api.get("/alerts", params={"rule": "cooler-moved"}).json()["value"]
        return [a["device"] for a in found]

    assert wait_until(moved_alert, timeout=15) == [MOVED]  # the rules engine agrees

    sign_in(page)
    page.goto(f"/dashboards/{app.dashboard['id']}")
    markers = page.locator("svg.map g.marker")
    assert markers.count() == 4
    outside = page.locator("svg.map g.marker.outside")
    assert outside.count() == 1
    assert outside.get_attribute("data-device") == MOVED
    title = outside.locator("title").text_content() or ""
    assert title.startswith(MOVED) and "outside 200 m" in title
    distance = int(title.split(": ")[1].split(" m ")[0])
    assert 850 < distance < 950
    assert MOVED in page.locator(".map-outside").inner_text()
