"""Plain DTDL documents turned into an IoT Central device template."""

from __future__ import annotations

import json

import pytest

from aislehub.models import is_device_template, load_iot_central_template, template_from_dtdl
from tests.models import samples


@pytest.mark.parametrize("version", [2, 3])
def test_a_model_set_becomes_a_loadable_template(version: int) -> None:
    documents = samples.controller_set(version)
    documents.reverse()  # the root is found by references, not by position
    template = template_from_dtdl(documents)
    assert template["@id"] == samples.CONTROLLER
    assert template["@type"] == ["ModelDefinition", "DeviceModel"]
    assert template["displayName"] == "Temperature Controller"
    assert is_device_template(template)
    components = {
        c["name"]: c["schema"]
        for c in template["capabilityModel"]["contents"]
        if c["@type"] == "Component"
    }
    assert components["thermostat1"]["@id"] == samples.THERMOSTAT  # inlined at first use
    assert components["thermostat2"] == samples.THERMOSTAT  # then referenced
    loaded = load_iot_central_template(template)
    model = loaded.models.root(loaded.root_id)
    assert model.property("thermostat2", "targetTemperature") is not None
    assert model.command(None, "reboot") is not None


def test_single_interface_json_text_and_explicit_id() -> None:
    text = json.dumps(samples.thermostat())
    template = template_from_dtdl(text, "dtmi:acme:thermostatTemplate;1")
    assert template["@id"] == "dtmi:acme:thermostatTemplate;1"
    assert template["capabilityModel"]["@id"] == samples.THERMOSTAT
    assert template["@context"] == ["dtmi:dtdl:context;2"]
    assert load_iot_central_template(template).root_id == samples.THERMOSTAT


def test_extends_is_inlined() -> None:
    base = samples.interface(
        "dtmi:acme:Base;1", [{"@type": "Property", "name": "site", "schema": "string"}]
    )
    child = samples.interface("dtmi:acme:Child;1", [], extends="dtmi:acme:Base;1")
    template = template_from_dtdl([base, child])
    assert template["capabilityModel"]["extends"]["@id"] == "dtmi:acme:Base;1"
    loaded = load_iot_central_template(template)
    assert loaded.models.root(loaded.root_id).property(None, "site") is not None


def test_nothing_to_import() -> None:
    with pytest.raises(ValueError, match="no DTDL Interface"):
        template_from_dtdl([{"no": "id"}])
    assert not is_device_template(samples.thermostat())
