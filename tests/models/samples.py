"""Small models shaped like the public IoT Plug and Play samples (Thermostat,
TemperatureController, DeviceInformation), written for these tests, in DTDL v2 or v3.

Each call returns fresh dicts, so a test may mutate what it gets.
"""

from __future__ import annotations

from typing import Any

THERMOSTAT = "dtmi:com:example:Thermostat;1"
CONTROLLER = "dtmi:com:example:TemperatureController;1"
DEVICE_INFO = "dtmi:azure:DeviceManagement:DeviceInformation;1"

Json = dict[str, Any]


def context(version: int) -> str | list[str]:
    if version == 2:
        return "dtmi:dtdl:context;2"
    return ["dtmi:dtdl:context;3", "dtmi:dtdl:extension:quantitativeTypes;1"]


def interface(iid: str, contents: list[Json], version: int = 2, **more: Any) -> Json:
    base = {"@context": context(version), "@id": iid, "@type": "Interface", "contents": contents}
    return base | more


def thermostat(version: int = 2) -> Json:
    report_fields = [
        {"name": "maxTemp", "displayName": "Max temperature", "schema": "double"},
        {"name": "minTemp", "displayName": "Min temperature", "schema": "double"},
        {"name": "avgTemp", "displayName": "Average Temperature", "schema": "double"},
        {"name": "startTime", "displayName": "Start Time", "schema": "dateTime"},
        {"name": "endTime", "displayName": "End Time", "schema": "dateTime"},
    ]
    contents: list[Json] = [
        {
            "@type": ["Telemetry", "Temperature"],
            "name": "temperature",
            "displayName": "Temperature",
            "description": "Temperature in degrees Celsius.",
            "schema": "double",
            "unit": "degreeCelsius",
        },
        {
            "@type": ["Property", "Temperature"],
            "name": "targetTemperature",
            "displayName": {"en": "Target Temperature", "it": "Temperatura obiettivo"},
            "schema": "double",
            "unit": "degreeCelsius",
            "writable": True,
        },
        {
            "@type": ["Property", "Temperature"],
            "name": "maxTempSinceLastReboot",
            "schema": "double",
            "unit": "degreeCelsius",
        },
        {
            "@type": "Command",
            "name": "getMaxMinReport",
            "displayName": "Get Max-Min report.",
            "request": {"name": "since", "displayName": "Since", "schema": "dateTime"},
            "response": {
                "name": "tempReport",
                "displayName": "Temperature Report",
                "schema": {"@type": "Object", "fields": report_fields},
            },
        },
    ]
    return interface(THERMOSTAT, contents, version, displayName="Thermostat")


def device_information(version: int = 2) -> Json:
    strings = ["manufacturer", "model", "swVersion", "osName", "processorArchitecture"]
    contents: list[Json] = [{"@type": "Property", "name": n, "schema": "string"} for n in strings]
    contents += [
        {"@type": "Property", "name": "totalStorage", "schema": "double"},
        {"@type": "Property", "name": "totalMemory", "schema": "double"},
    ]
    return interface(DEVICE_INFO, contents, version, displayName="Device Information")


def controller(version: int = 2) -> Json:
    contents: list[Json] = [
        {
            "@type": ["Telemetry", "DataSize"],
            "name": "workingSet",
            "displayName": "Working Set",
            "schema": "double",
            "unit": "kibibyte",
        },
        {"@type": "Property", "name": "serialNumber", "schema": "string", "writable": False},
        {
            "@type": "Command",
            "name": "reboot",
            "commandType": "synchronous",
            "request": {"name": "delay", "displayName": "Delay", "schema": "integer"},
        },
        {"@type": "Component", "name": "thermostat1", "schema": THERMOSTAT},
        {"@type": "Component", "name": "thermostat2", "schema": THERMOSTAT},
        {"@type": "Component", "name": "deviceInformation", "schema": DEVICE_INFO},
    ]
    if version == 3:
        del contents[2]["commandType"]
    return interface(CONTROLLER, contents, version, displayName="Temperature Controller")


def controller_set(version: int = 2) -> list[Json]:
    """The three documents a TemperatureController device needs, as three documents."""
    return [controller(version), thermostat(version), device_information(version)]
