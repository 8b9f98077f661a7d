"""A thermostat-style device template in IoT Central's shape, for API and end-to-end tests.

Root: telemetry ``workingSet``, read-only ``serialNumber``, cloud property ``site``, command
``reboot`` (request: integer ``delay``); components ``thermostat1`` and ``thermostat2`` of one
Thermostat Interface (telemetry ``temperature``, writable double ``targetTemperature``,
command ``getMaxMinReport``). The second component names the Interface by DTMI: an @id is
defined once per model, so it resolves to the first component's inline copy.
"""

from __future__ import annotations

from typing import Any

from tests.models import samples

CONTROLLER = "dtmi:aislehub:test:Controller;1"
CAPABILITY_MODEL = "dtmi:aislehub:test:ControllerModel;1"

Json = dict[str, Any]


def controller_model() -> Json:
    thermostat = samples.thermostat()
    del thermostat["@context"]
    contents: list[Json] = [
        {
            "@type": ["Telemetry", "DataSize"],
            "name": "workingSet",
            "schema": "double",
            "unit": "kibibyte",
        },
        {"@type": "Property", "name": "serialNumber", "schema": "string"},
        {"@type": ["Property", "Cloud"], "name": "site", "schema": "string"},
        {
            "@type": "Command",
            "name": "reboot",
            "commandType": "synchronous",
            "request": {"name": "delay", "schema": "integer"},
        },
        {
            "@type": "Component",
            "name": "thermostat1",
            "displayName": "Thermostat One",
            "schema": thermostat,
        },
        {"@type": "Component", "name": "thermostat2", "schema": samples.THERMOSTAT},
    ]
    return {
        "@id": CAPABILITY_MODEL,
        "@type": "Interface",
        "displayName": "Temperature Controller",
        "contents": contents,
    }


def controller_template(**changes: Any) -> Json:
    doc: Json = {
        "@type": ["ModelDefinition", "DeviceModel"],
        "@context": ["dtmi:iotcentral:context;2", "dtmi:dtdl:context;2"],
        "displayName": "Controller",
        "capabilityModel": controller_model(),
    }
    return doc | changes
