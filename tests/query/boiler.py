"""A boiler template and a telemetry database laid out as the DuckDB store keeps it.

Root telemetry ``temperature`` and ``pressure`` (double), ``status`` (string), ``burner``
(boolean), ``mode`` (integer enum), ``location`` (geopoint); properties ``serialNumber``
(reported), ``setpoint`` (writable double), cloud property ``site``; component ``inlet``
(Interface ``dtmi:acme:Probe;1``) with telemetry ``temperature`` and property
``firmware``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from aislehub.models import Property, load_iot_central_template
from aislehub.models.modelset import ResolvedModel

BOILER = "dtmi:acme:Boiler;1"
OTHER = "dtmi:acme:Other;1"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

Json = dict[str, Any]

# The store's tables (aislehub.store.duckdb_telemetry), as the planner reads them.
DDL = """
CREATE TABLE telemetry_num (app_id VARCHAR NOT NULL, device_id VARCHAR NOT NULL,
    module_id VARCHAR, component VARCHAR, name VARCHAR NOT NULL, ts TIMESTAMP NOT NULL,
    value DOUBLE, log_offset BIGINT);
CREATE TABLE telemetry_val (app_id VARCHAR NOT NULL, device_id VARCHAR NOT NULL,
    module_id VARCHAR, component VARCHAR, name VARCHAR NOT NULL, ts TIMESTAMP NOT NULL,
    value JSON, log_offset BIGINT);
CREATE TABLE device_catalog (app_id VARCHAR NOT NULL, device_id VARCHAR NOT NULL,
    template_id VARCHAR, provisioned BOOLEAN NOT NULL, simulated BOOLEAN NOT NULL,
    enabled BOOLEAN NOT NULL);
"""


def boiler_template() -> Json:
    probe = {
        "@id": "dtmi:acme:Probe;1",
        "@type": "Interface",
        "contents": [
            {"@type": "Telemetry", "name": "temperature", "schema": "double"},
            {"@type": "Property", "name": "firmware", "schema": "string"},
        ],
    }
    mode = {
        "@type": "Enum",
        "valueSchema": "integer",
        "enumValues": [
            {"name": "off", "enumValue": 0},
            {"name": "eco", "enumValue": 1},
            {"name": "boost", "enumValue": 2},
        ],
    }
    contents: list[Json] = [
        {"@type": "Telemetry", "name": "temperature", "schema": "double"},
        {"@type": "Telemetry", "name": "pressure", "schema": "double"},
        {"@type": "Telemetry", "name": "status", "schema": "string"},
        {"@type": "Telemetry", "name": "burner", "schema": "boolean"},
        {"@type": "Telemetry", "name": "mode", "schema": mode},
        {"@type": "Telemetry", "name": "location", "schema": "geopoint"},
        {"@type": "Property", "name": "serialNumber", "schema": "string"},
        {"@type": "Property", "name": "setpoint", "schema": "double", "writable": True},
        {"@type": ["Property", "Cloud"], "name": "site", "schema": "string"},
        {"@type": "Component", "name": "inlet", "schema": probe},
    ]
    return {
        "@type": ["ModelDefinition", "DeviceModel"],
        "@context": ["dtmi:iotcentral:context;2", "dtmi:dtdl:context;2"],
        "displayName": "Boiler",
        "capabilityModel": {
            "@id": "dtmi:acme:BoilerModel;1",
            "@type": "Interface",
            "contents": contents,
        },
    }


def boiler_model() -> tuple[ResolvedModel, dict[str, Property]]:
    parsed = load_iot_central_template(boiler_template())
    cloud = {p.name: p for p in parsed.cloud_properties}
    return parsed.models.root(parsed.root_id), cloud


NUMERIC = {"temperature", "pressure"}


@dataclass
class Telemetry:
    """Writes messages the way the store writer files them: one row per field."""

    con: duckdb.DuckDBPyConnection
    offset: int = 0
    devices: dict[tuple[str, str], tuple[str | None, bool, bool]] = field(default_factory=dict)

    def device(
        self,
        device_id: str,
        template: str | None = BOILER,
        app_id: str = "app-a",
        provisioned: bool = True,
        simulated: bool = False,
    ) -> None:
        self.devices[(app_id, device_id)] = (template, provisioned, simulated)
        self.con.execute("DELETE FROM device_catalog")
        self.con.executemany(
            "INSERT INTO device_catalog VALUES (?, ?, ?, ?, ?, true)",
            [[a, d, t, p, s] for (a, d), (t, p, s) in self.devices.items()],
        )

    def send(
        self,
        device_id: str,
        ts: datetime,
        fields: Json,
        component: str | None = None,
        app_id: str = "app-a",
        module_id: str | None = None,
    ) -> None:
        self.offset += 1
        for name, value in fields.items():
            numeric = name in NUMERIC and isinstance(value, int | float)
            table = "telemetry_num" if numeric else "telemetry_val"
            stored = value if numeric else orjson.dumps(value).decode()
            self.con.execute(
                f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    app_id,
                    device_id,
                    module_id,
                    component,
                    name,
                    ts.astimezone(UTC).replace(tzinfo=None),
                    stored,
                    self.offset,
                ],
            )


def memory_db() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(":memory:")
    con.execute(DDL)
    try:
        yield con
    finally:
        con.close()
