"""Lifecycle events from device changes, and blocks made by another process enforced."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from aislehub.hub.hub import DeviceHub
from aislehub.hub.lifecycle import device_changes
from aislehub.metrics import Metrics
from aislehub.store.metadata import App, Device, MetadataStore
from tests.api.conftest import FakeLink


def test_registration_deletion_and_changes() -> None:
    device = Device("app", "d1", "Cooler 1")
    assert device_changes(None, device, "api") == [
        ("registered", {"source": "api", "template": None})
    ]
    blocked_at_birth = dataclasses.replace(device, enabled=False)
    assert [k for k, _ in device_changes(None, blocked_at_birth, "cli")] == [
        "registered",
        "disabled",
    ]
    assert device_changes(device, None, "cli") == [("deleted", {"source": "cli"})]
    assert device_changes(None, None, "api") == []
    changed = dataclasses.replace(device, enabled=False, display_name="Cooler one", template="t")
    assert device_changes(device, changed, "api") == [
        ("disabled", {"source": "api"}),
        (
            "displayNameChanged",
            {"displayName": "Cooler one", "previous": "Cooler 1", "source": "api"},
        ),
        ("templateAssigned", {"template": "t", "previous": None, "source": "api"}),
    ]
    assert device_changes(changed, dataclasses.replace(changed, enabled=True), "api") == [
        ("enabled", {"source": "api"})
    ]
    assert device_changes(device, dataclasses.replace(device), "api") == []


def test_blocks_by_another_process_close_links(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    store = MetadataStore(url)
    store.create_app(App("app", "App", "app", "0ne00000001"))
    hub = DeviceHub(store, Metrics(), "hub.example")
    for device_id in ("keep", "block", "delete"):
        store.put_device(Device("app", device_id, device_id))
    links = {d: FakeLink(hub, ("app", d, ""), True) for d in ("keep", "block", "delete")}
    module = FakeLink(hub, ("app", "block", "camera"), True)
    for d, link in links.items():
        hub.links.attach(("app", d, ""), link)
    hub.links.attach(("app", "block", "camera"), module)
    assert hub.enforce_blocks() == 0
    cli = MetadataStore(url)
    try:
        blocked = cli.get_device("app", "block")
        assert blocked is not None
        blocked.enabled = False
        cli.put_device(blocked)
        cli.delete_device("app", "delete")
    finally:
        cli.close()
    assert hub.enforce_blocks() == 3
    assert links["keep"].closed is None
    assert links["block"].closed == module.closed == "device blocked"
    assert links["delete"].closed == "device deleted"
    store.close()
