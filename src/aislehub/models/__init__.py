"""DTDL v2/v3 device models: parse, resolve, check, and validate values against them.

::

    models = parse_models([controller_json, thermostat_json])   # or raise ModelErrors
    device = models.root("dtmi:com:example:TemperatureController;1")
    target = device.property("thermostat1", "targetTemperature")
    validate_value(target.schema, 21.5)                          # [] when valid

Layers, bottom up (this package imports nothing of ours but ``aislehub.errors``):

* ``dialects``, ``units``, ``rules`` — the language as data: per-version limits, schema names,
  semantic types and units, and the rule catalogue with spec citations.
* ``members``, ``contexts``, ``schemas``, ``enums``, ``semantics``, ``contents``,
  ``interfaces`` — a recursive descent over the JSON that reports every broken rule with its path.
* ``resolve`` — cross-document checks (references, cycles, depth, inherited names).
* ``parser`` (``parse_models``), ``modelset`` (``ModelSet``, flattened views),
  ``iotcentral`` (device-template import), ``dtdl_import`` (plain DTDL → a template
  document), ``values`` + ``geo`` + ``temporal`` (``validate_value``).

Where the specification leaves room, we chose (each choice is explained where it is made):

* v3 core primitives are the ten of v2 (v3 Spec §Standard schemas); ``byte``, ``uuid``,
  ``scaledDecimal`` … arrived with DTDL v4, which we do not read yet.
* Limits follow the normative texts: names and display names max 64 characters in v2 and
  512 in v3; 10 levels of ``extends``; 5 levels of complex schemas.
* Unknown co-types are accepted and, as v2 §Undefined co-types says, open the element to
  undefined members; an extension context we do not model fully (IoT Central, historization …)
  does the same for its elements ("AllowUndefinedExtensions").
* The DTDL context may come anywhere in ``@context`` (IoT Central lists its own first).
* A reusable schema is visible only inside its Interface (v3 Spec §Partitions).
* Values: see ``values``: JSON integers are doubles, bools are never numbers, unknown object
  fields are reported, ``dateTime`` needs an offset, ``point`` also takes IoT Central's
  ``{"lat", "lon", "alt"}``.
"""

from __future__ import annotations

from aislehub.models.dtdl_import import is_device_template, template_from_dtdl
from aislehub.models.elements import (
    ArraySchema,
    Command,
    CommandPayload,
    Component,
    Content,
    EnumSchema,
    EnumValue,
    Field,
    GeoSchema,
    Interface,
    MapSchema,
    ObjectSchema,
    Primitive,
    Property,
    Relationship,
    Schema,
    Telemetry,
    Text,
)
from aislehub.models.errors import ModelError, ModelErrors
from aislehub.models.iotcentral import DeviceTemplate, load_iot_central_template
from aislehub.models.modelset import ModelSet, ResolvedInterface, ResolvedModel
from aislehub.models.parser import parse_models
from aislehub.models.values import validate_value

__all__ = [
    "ArraySchema",
    "Command",
    "CommandPayload",
    "Component",
    "Content",
    "DeviceTemplate",
    "EnumSchema",
    "EnumValue",
    "Field",
    "GeoSchema",
    "Interface",
    "MapSchema",
    "ModelError",
    "ModelErrors",
    "ModelSet",
    "ObjectSchema",
    "Primitive",
    "Property",
    "Relationship",
    "ResolvedInterface",
    "ResolvedModel",
    "Schema",
    "Telemetry",
    "Text",
    "is_device_template",
    "load_iot_central_template",
    "parse_models",
    "template_from_dtdl",
    "validate_value",
]
