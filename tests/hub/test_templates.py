"""Templates in the hub: auto-assignment (CONNECT and DPS), the parse cache, acknowledgements."""

from __future__ import annotations

from pathlib import Path

import pytest

from aislehub.errors import Conflict, NotFound
from aislehub.hub.hub import DeviceHub
from aislehub.hub.property_view import Ack, ack_of, ack_state
from aislehub.hub.templates import InvalidTemplate
from aislehub.metrics import Metrics
from aislehub.store.metadata import App, Device, MetadataStore
from tests.api.template_samples import CAPABILITY_MODEL, CONTROLLER, controller_template

APP = App("app", "App", "app", "0ne00000001")


@pytest.fixture
def hub(tmp_path: Path) -> DeviceHub:
    store = MetadataStore(f"sqlite:///{tmp_path / 'm.sqlite'}")
    store.create_app(APP)
    return DeviceHub(store, Metrics(), "hub.example")


def events(hub: DeviceHub, device_id: str, kind: str) -> list[object]:
    hub.flush_events()
    return [d for k, d, _ in hub.store.events("app", device_id) if k == kind]


def test_connect_model_id_assigns_the_template_once(hub: DeviceHub) -> None:
    hub.templates.publish("app", CONTROLLER, controller_template())
    device = hub.store.put_device(Device("app", "d1", "d1"))
    hub.announce_model(device, CAPABILITY_MODEL)  # the capability model's id matches too
    assert device.template == CONTROLLER and device.model_id == CAPABILITY_MODEL
    stored = hub.store.get_device("app", "d1")
    assert stored is not None and stored.template == CONTROLLER
    assert stored.etag != device.etag  # the device body changed
    hub.announce_model(device, CAPABILITY_MODEL)
    assert events(hub, "d1", "templateAssigned") == [
        {"template": CONTROLLER, "modelId": CAPABILITY_MODEL, "source": "connect"}
    ]


def test_connect_never_overrides_an_operator_choice(hub: DeviceHub) -> None:
    hub.templates.publish("app", CONTROLLER, controller_template())
    hub.templates.publish("app", "dtmi:other:T;1", controller_template())
    stale = hub.store.put_device(Device("app", "d1", "d1"))
    current = hub.store.get_device("app", "d1")
    assert current is not None
    current.template = "dtmi:other:T;1"
    hub.store.put_device(current)
    hub.announce_model(stale, CONTROLLER)  # a cached copy that still says "no template"
    stored = hub.store.get_device("app", "d1")
    assert stored is not None and stored.template == "dtmi:other:T;1"
    assert stored.model_id == CONTROLLER
    assert events(hub, "d1", "templateAssigned") == []


def test_unknown_model_is_only_noted(hub: DeviceHub) -> None:
    device = hub.store.put_device(Device("app", "d1", "d1"))
    hub.announce_model(device, "dtmi:unknown:M;1")
    hub.announce_model(device, None)
    stored = hub.store.get_device("app", "d1")
    assert stored is not None and stored.template is None
    assert stored.model_id == "dtmi:unknown:M;1"


def test_dps_registration_assigns_the_template(hub: DeviceHub) -> None:
    hub.templates.publish("app", CONTROLLER, controller_template())
    _, registration = hub.provisioning.register(APP, "d1", None, {"modelId": CONTROLLER})
    assert registration.status == "assigned"
    device = hub.store.get_device("app", "d1")
    assert device is not None and device.template == CONTROLLER and device.provisioned
    assert events(hub, "d1", "templateAssigned") == [
        {"template": CONTROLLER, "modelId": CONTROLLER, "source": "dps"}
    ]
    hub.provisioning.register(APP, "d2", None, {"modelId": "dtmi:unknown:M;1"})
    unknown = hub.store.get_device("app", "d2")
    assert unknown is not None and unknown.template is None


def test_the_parsed_template_is_cached_until_it_changes(hub: DeviceHub) -> None:
    hub.templates.publish("app", CONTROLLER, controller_template())
    first = hub.templates.get("app", CONTROLLER)
    assert first is not None and hub.templates.get("app", CONTROLLER) is first
    assert first.writable == {
        ("thermostat1", "targetTemperature"),
        ("thermostat2", "targetTemperature"),
    }
    assert set(first.cloud) == {"site"}
    hub.templates.publish("app", CONTROLLER, controller_template(displayName="v2"))
    second = hub.templates.get("app", CONTROLLER)
    assert second is not None and second is not first and second.etag != first.etag
    assert hub.templates.get("app", "dtmi:none:T;1") is None


def test_catalog_errors(hub: DeviceHub) -> None:
    with pytest.raises(InvalidTemplate):
        hub.templates.publish("app", "not a dtmi", controller_template())
    with pytest.raises(NotFound):
        hub.templates.delete("app", CONTROLLER)
    hub.templates.publish("app", CONTROLLER, controller_template())
    hub.store.put_device(Device("app", "d1", "d1", template=CONTROLLER))
    with pytest.raises(Conflict):
        hub.templates.delete("app", CONTROLLER)


@pytest.mark.parametrize(
    ("reported", "ack"),
    [
        ({"value": 1, "ac": 200, "av": 3, "ad": "ok"}, Ack(200, 3, "ok", 1)),
        ({"value": 1, "ac": 400}, Ack(400, None, None, 1)),
        ({"value": 1, "ac": True, "av": 3}, None),  # a bool is not a code
        ({"value": 1, "ac": 200, "extra": 1}, None),  # an ordinary object property
        ({"value": 1}, None),
        (21.5, None),
    ],
)
def test_ack_shape(reported: object, ack: Ack | None) -> None:
    assert ack_of(reported) == ack


@pytest.mark.parametrize(
    ("version", "ack", "state"),
    [
        (3, None, "pending"),
        (3, Ack(200, 2, None, 0), "pending"),  # acknowledges an older value
        (3, Ack(200, None, None, 0), "pending"),
        (3, Ack(200, 3, None, 0), "accepted"),
        (3, Ack(204, 4, None, 0), "accepted"),
        (3, Ack(400, 3, "no", 0), "rejected"),
        (3, Ack(500, 5, "no", 0), "rejected"),
        (3, Ack(102, 3, None, 0), "pending"),
    ],
)
def test_ack_state(version: int, ack: Ack | None, state: str) -> None:
    assert ack_state(version, ack) == state
