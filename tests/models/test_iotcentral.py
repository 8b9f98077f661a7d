"""IoT Central device templates (REST API ``/deviceTemplates``) import."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aislehub.models import ModelErrors, load_iot_central_template
from tests.models import samples


def template(**changes: Any) -> dict[str, Any]:
    """Shaped like the IoT Central docs' thermostat template, with a component added."""
    model = samples.thermostat()
    del model["@context"]  # the template's @context applies
    model["contents"][1].update(
        {
            "@type": ["Property", "Temperature", "NumberValue"],
            "decimalPlaces": 1,
            "displayUnit": "C",
            "maxValue": 80,
            "minValue": 50,
        }
    )
    model["contents"].append(
        {
            "@type": ["Property", "Cloud", "StringValue"],
            "displayName": "Customer Name",
            "name": "CustomerName",
            "schema": "string",
        }
    )
    info = samples.device_information()
    del info["@context"]
    info["contents"].append(
        {"@type": ["Telemetry", "Location"], "name": "position", "schema": "geopoint"}
    )
    model["contents"].append({"@type": "Component", "name": "deviceInformation", "schema": info})
    model["extends"] = [
        {
            "@id": "dtmi:contoso:Base;1",
            "@type": ["Interface", "NamedInterface"],
            "name": "contoso_base",
            "contents": [{"@type": ["Property", "Cloud"], "name": "site", "schema": "string"}],
        }
    ]
    doc = {
        "@id": "dtmi:contoso:mythermostattemplate;1",
        "@type": ["ModelDefinition", "DeviceModel"],
        "@context": ["dtmi:iotcentral:context;2", "dtmi:dtdl:context;2"],
        "displayName": "Thermostat",
        "capabilityModel": model,
    }
    return doc | changes


def test_template_loads_model_root_and_cloud_properties() -> None:
    models, root_id, cloud = load_iot_central_template(template())
    assert root_id == samples.THERMOSTAT
    assert [p.name for p in cloud] == ["site", "CustomerName"]
    model = models.root(root_id)
    assert model.property(None, "CustomerName") is None  # devices never see cloud properties
    assert model.property(None, "site") is None
    target = model.property(None, "targetTemperature")
    assert target is not None and target.cotypes == ("Temperature", "NumberValue")
    assert model.telemetry("deviceInformation", "position") is not None
    assert set(models) == {samples.THERMOSTAT, samples.DEVICE_INFO, "dtmi:contoso:Base;1"}


def test_template_as_json_text() -> None:
    assert load_iot_central_template(json.dumps(template())).root_id == samples.THERMOSTAT


def test_template_without_context_is_iot_central_v2() -> None:
    doc = template()
    del doc["@context"]
    assert load_iot_central_template(doc).models.interfaces[samples.THERMOSTAT].dtdl_version == 2


@pytest.mark.parametrize(
    ("changes", "path", "rule"),
    [
        ({"@type": "Interface"}, "dtmi:contoso:mythermostattemplate;1 / @type", "template"),
        (
            {"capabilityModel": None},
            "dtmi:contoso:mythermostattemplate;1 / capabilityModel",
            "template",
        ),
        ({"@id": "thermostat"}, "thermostat / @id", "dtmi-syntax"),
    ],
)
def test_template_shape_errors(changes: dict[str, Any], path: str, rule: str) -> None:
    with pytest.raises(ModelErrors) as caught:
        load_iot_central_template(template(**changes))
    assert [(e.path, e.rule) for e in caught.value.errors] == [(path, rule)]


def test_errors_inside_the_capability_model_carry_its_paths() -> None:
    doc = template()
    doc["capabilityModel"]["contents"][0]["name"] = "bad name"
    with pytest.raises(ModelErrors) as caught:
        load_iot_central_template(doc)
    found = [(e.path, e.rule) for e in caught.value.errors]
    assert found == [(f"{samples.THERMOSTAT} / contents[0] (bad name) / name", "name-pattern")]
