"""A boiler template and a telemetry database laid out as the stores keep it: an
in-memory DuckDB with the DuckDB store's tables, or a fresh PostgreSQL database with the
PostgreSQL store's (partitioned; a default partition holds the tests' old days).

Root telemetry ``temperature`` and ``pressure`` (double), ``status`` (string), ``burner``
(boolean), ``mode`` (integer enum), ``location`` (geopoint); properties ``serialNumber``
(reported), ``setpoint`` (writable double), cloud property ``site``; component ``inlet``
(Interface ``dtmi:acme:Probe;1``) with telemetry ``temperature`` and property
``firmware``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson
import psycopg

from aislehub.models import Property, load_iot_central_template
from aislehub.models.modelset import ResolvedModel
from aislehub.store.postgres_telemetry import PARTITIONED_TABLES, PostgresTelemetryStore
from tests.services import postgres_database

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


class _Postgres:
    """A psycopg connection that takes DuckDB's ``?`` placeholders, as the helpers write."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql.replace("?", "%s"), list(params))

    def executemany(self, sql: str, rows: list[list[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)


@dataclass
class Telemetry:
    """Writes messages the way the store writer files them: one row per field; ``rows``
    runs a statement as the store's ``query`` does (``dialect``: the store's)."""

    con: duckdb.DuckDBPyConnection | _Postgres
    dialect: str = "duckdb"
    store: PostgresTelemetryStore | None = None
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
                    self._ts(ts),
                    stored,
                    self.offset,
                ],
            )

    def _ts(self, ts: datetime) -> datetime:
        return ts.astimezone(UTC) if self.store else ts.astimezone(UTC).replace(tzinfo=None)

    def rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        if self.store is not None:
            return self.store.query(sql, params)[1]
        assert isinstance(self.con, duckdb.DuckDBPyConnection)
        return self.con.execute(sql, params).fetchall()


def memory_db() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(":memory:")
    con.execute(DDL)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def telemetry_db(dialect: str) -> Iterator[Telemetry]:
    """An empty telemetry database of either store, as :class:`Telemetry`."""
    if dialect == "duckdb":
        for con in memory_db():
            yield Telemetry(con)
        return
    with postgres_database() as url:
        store = PostgresTelemetryStore(url)
        libpq = url.replace("postgresql+psycopg://", "postgresql://", 1)
        conn = psycopg.connect(libpq, autocommit=True, options="-c TimeZone=UTC")
        try:
            for table in PARTITIONED_TABLES:  # the tests' days, whenever they are
                conn.execute(f"CREATE TABLE {table}_rest PARTITION OF {table} DEFAULT")
            yield Telemetry(_Postgres(conn), "postgres", store)
        finally:
            conn.close()
            store.close()
