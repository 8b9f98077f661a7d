"""The parsed model: frozen, typed dataclasses that later code reads (ingest, twins, UI, queries).

Schemas are a closed union (``Schema``); references to reusable schemas are already replaced by
the schema they name, so nothing downstream needs the interface that declared them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Text:
    """A localizable string (v2 §Display string localization): language tag → text."""

    values: tuple[tuple[str, str], ...]

    def get(self, language: str = "en") -> str:
        """The text in ``language``, else English, else the first one given."""
        found = dict(self.values)
        return found.get(language) or found.get("en") or self.values[0][1]

    def __str__(self) -> str:
        return self.get()


@dataclass(frozen=True, slots=True)
class Primitive:
    """One of the primitive schemas: ``boolean``, ``date``, ``dateTime``, ``double`` …"""

    name: str


@dataclass(frozen=True, slots=True)
class EnumValue:
    name: str
    value: int | str
    display_name: Text | None = None


@dataclass(frozen=True, slots=True)
class EnumSchema:
    value_schema: str  # "integer" or "string"
    values: tuple[EnumValue, ...]
    id: str | None = None
    display_name: Text | None = None


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    schema: Schema
    display_name: Text | None = None
    semantic_type: str | None = None
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectSchema:
    fields: tuple[Field, ...]
    id: str | None = None
    display_name: Text | None = None

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True, slots=True)
class MapSchema:
    key: str  # the mapKey name (metadata only; keys are always strings)
    value: Schema
    value_name: str = "value"
    id: str | None = None
    display_name: Text | None = None


@dataclass(frozen=True, slots=True)
class ArraySchema:
    element: Schema
    id: str | None = None
    display_name: Text | None = None


@dataclass(frozen=True, slots=True)
class GeoSchema:
    """A GeoJSON geometry (v2/v3 §Geospatial Schemas) or IoT Central's ``geopoint``."""

    kind: str  # point, multiPoint, lineString, multiLineString, polygon, multiPolygon, geopoint


Schema: TypeAlias = Primitive | EnumSchema | ObjectSchema | MapSchema | ArraySchema | GeoSchema


@dataclass(frozen=True, slots=True)
class Telemetry:
    name: str
    schema: Schema
    semantic_type: str | None = None
    unit: str | None = None
    display_name: Text | None = None
    description: Text | None = None
    id: str | None = None
    cotypes: tuple[str, ...] = ()  # every @type value besides "Telemetry"


@dataclass(frozen=True, slots=True)
class Property:
    name: str
    schema: Schema
    writable: bool = False
    semantic_type: str | None = None
    unit: str | None = None
    display_name: Text | None = None
    description: Text | None = None
    id: str | None = None
    cotypes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CommandPayload:
    """A command's request or response: ``name`` is metadata, ``schema`` is the payload."""

    name: str
    schema: Schema
    display_name: Text | None = None
    description: Text | None = None
    semantic_type: str | None = None
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    request: CommandPayload | None = None
    response: CommandPayload | None = None
    display_name: Text | None = None
    description: Text | None = None
    id: str | None = None
    cotypes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    interface_id: str
    display_name: Text | None = None
    description: Text | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Relationship:
    name: str
    target: str | None = None
    min_multiplicity: int | None = None
    max_multiplicity: int | None = None
    writable: bool = False
    properties: tuple[Property, ...] = ()
    display_name: Text | None = None
    description: Text | None = None
    id: str | None = None
    cotypes: tuple[str, ...] = ()  # e.g. IoT Central's "EdgeModule"


Content: TypeAlias = Telemetry | Property | Command | Component | Relationship


@dataclass(frozen=True, slots=True)
class Interface:
    """One Interface as written: its own contents; ``extends`` names the interfaces it inherits."""

    id: str
    dtdl_version: int
    contents: tuple[Content, ...] = ()
    extends: tuple[str, ...] = ()
    schemas: tuple[Schema, ...] = ()
    display_name: Text | None = None
    description: Text | None = None
    comment: str | None = None
    contexts: tuple[str, ...] = ()
    cotypes: tuple[str, ...] = ()
