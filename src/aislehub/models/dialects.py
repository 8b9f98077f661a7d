"""What differs between DTDL v2 and v3, declared as data (one ``Dialect`` per version).

Limits come from the v2 reference tables (``DTDL.v2.md``) and the v3 normative specification
(``DTDL.Specification.v3.md`` §Limits and exclusions); the comment on each field says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# v2 §Context / v3 Spec §Context: the DTDL context names the language version.
DTDL_CONTEXT_PREFIX = "dtmi:dtdl:context;"
QUANTITATIVE_TYPES = "dtmi:dtdl:extension:quantitativeTypes;1"  # QuantitativeTypes v1 (DTDL v3)
IOT_CENTRAL = "dtmi:iotcentral:context;2"  # DTDL.iotcentral.v2.md (DTDL v2)

_SEGMENT = r"[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?"
# v2 §DTMI: version required, one part, no leading zero, max nine digits.
DTMI_V2 = re.compile(rf"^dtmi:{_SEGMENT}(?::{_SEGMENT})*;[1-9][0-9]{{0,8}}$")
# v3 Spec §DTMI (Requirement-DtmiRegexV3): version optional, one or two parts.
DTMI_V3 = re.compile(
    rf"^dtmi:{_SEGMENT}(?::{_SEGMENT})*(?:;[1-9][0-9]{{0,8}}(?:\.[1-9][0-9]{{0,5}})?)?$"
)
# v3 Spec §Context (Requirement-ContextDtmiWithVersionQuantV3): contexts carry a version.
CONTEXT_DTMI = re.compile(
    rf"^dtmi:{_SEGMENT}(?::{_SEGMENT})*;[1-9][0-9]{{0,8}}(?:\.[1-9][0-9]{{0,5}})?$"
)
RESERVED_PREFIXES = ("dtmi:dtdl:", "dtmi:standard:")  # v2/v3 §DTMI: reserved by the language
NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?$")  # v2/v3 §<class> name

PRIMITIVES = (  # v2 §Primitive schema; v3 Spec §Standard schemas (the same ten in v3 core)
    "boolean",
    "date",
    "dateTime",
    "double",
    "duration",
    "float",
    "integer",
    "long",
    "string",
    "time",
)
NUMERIC = frozenset({"double", "float", "integer", "long"})  # v2 §Semantic Type: numeric schemas
GEOSPATIAL = ("lineString", "multiLineString", "multiPoint", "multiPolygon", "point", "polygon")
IOT_CENTRAL_SCHEMAS = ("geopoint", "vector")  # DTDL.iotcentral.v2.md §IoT Central Schemas
COMPLEX = ("Array", "Enum", "Map", "Object")
CONTENT_CLASSES = ("Command", "Component", "Property", "Relationship", "Telemetry")


@dataclass(frozen=True, slots=True)
class Dialect:
    version: int
    dtmi: re.Pattern[str]
    name_max: int  # v2 §<class> name: 64; v3 Spec name: 512
    display_name_max: int  # v2 §<class> displayName: 64; v3 Spec displayName: 512
    language_tag: re.Pattern[str]  # v2: BCP 47; v3 Spec §Localizable string: fixed regex
    contents_max: int  # v2 §Interface: 300 incl. extends; v3 §Interface: 100,000 elements
    extends_direct_max: int | None  # v2 §Interface extends: max 2 in set; v3: no set limit
    extends_total_max: int | None  # v3 Spec §Limits: max 1024 Interfaces in hierarchy
    enum_values_max: int | None  # v2 §Enum: 100; v3 replaced by the element count
    fields_max: int | None  # v2 §Object: 30
    relationship_properties_max: int | None  # v2 §Relationship: 300
    max_multiplicity_max: int | None  # v2 §Relationship maxMultiplicity: <= 500
    enum_values_required: bool  # v2 §Enum enumValues required; v3 Changes: no longer
    fields_required: bool  # v2 §Object fields required; v3 Changes: no longer
    property_allows_array: bool  # v2 §Limits: no Array/geospatial in Property; v3 allows
    payload_classes: tuple[str, str]  # v2 CommandPayload; v3 CommandRequest/CommandResponse
    keywords_forbidden: bool  # v3 Spec: other @-members MUST NOT; v2 Spec: SHOULD NOT
    builtin_semantic_types: bool  # v2 §Semantic Type; v3 only through QuantitativeTypes
    extends_depth_max: int = 10  # v2 §Interface, v3 Spec §Limits: max 10 levels
    schema_depth_max: int = 5  # v2/v3 §Complex schema: max 5 levels
    interface_id_max: int = 128  # v2/v3 §DTMI: an Interface id is max 128 characters
    id_max: int = 2048  # v2/v3 §DTMI: a user DTMI is max 2048 characters
    text_max: int = 512  # description and comment: max 512 characters


V2 = Dialect(
    version=2,
    dtmi=DTMI_V2,
    name_max=64,
    display_name_max=64,
    language_tag=re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$"),
    contents_max=300,
    extends_direct_max=2,
    extends_total_max=None,
    enum_values_max=100,
    fields_max=30,
    relationship_properties_max=300,
    max_multiplicity_max=500,
    enum_values_required=True,
    fields_required=True,
    property_allows_array=False,
    payload_classes=("CommandPayload", "CommandPayload"),
    keywords_forbidden=False,
    builtin_semantic_types=True,
)

V3 = Dialect(
    version=3,
    dtmi=DTMI_V3,
    name_max=512,
    display_name_max=512,
    language_tag=re.compile(r"^[a-z]{2,4}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$"),
    contents_max=100_000,
    extends_direct_max=None,
    extends_total_max=1024,
    enum_values_max=None,
    fields_max=None,
    relationship_properties_max=None,
    max_multiplicity_max=None,
    enum_values_required=False,
    fields_required=False,
    property_allows_array=True,
    payload_classes=("CommandRequest", "CommandResponse"),
    keywords_forbidden=True,
    builtin_semantic_types=False,
)

DIALECTS = {2: V2, 3: V3}

_COMMON = frozenset({"@context", "@id", "@type", "comment", "description", "displayName"})
# The members each class defines (v2/v3 §<class> tables). ``unit`` is checked on its own.
MEMBERS: dict[str, frozenset[str]] = {
    "Interface": _COMMON | {"contents", "extends", "schemas"},
    "Telemetry": _COMMON | {"name", "schema"},
    "Property": _COMMON | {"name", "schema", "writable"},
    "Command": _COMMON | {"name", "request", "response", "commandType"},
    "CommandPayload": _COMMON | {"name", "schema"},
    "Component": _COMMON | {"name", "schema"},
    "Relationship": _COMMON
    | {"name", "target", "minMultiplicity", "maxMultiplicity", "properties", "writable"},
    "Array": _COMMON | {"elementSchema"},
    "Enum": _COMMON | {"valueSchema", "enumValues"},
    "EnumValue": _COMMON | {"name", "enumValue"},
    "Map": _COMMON | {"mapKey", "mapValue"},
    "MapKey": _COMMON | {"name", "schema"},
    "MapValue": _COMMON | {"name", "schema"},
    "Object": _COMMON | {"fields"},
    "Field": _COMMON | {"name", "schema"},
}
MEMBERS["CommandRequest"] = MEMBERS["CommandResponse"] = MEMBERS["CommandPayload"]


def dtdl_version(context: str) -> int | None:
    """The DTDL version a ``dtmi:dtdl:context;N`` names, None for any other context."""
    if not context.startswith(DTDL_CONTEXT_PREFIX):
        return None
    tail = context[len(DTDL_CONTEXT_PREFIX) :]
    return int(tail) if tail.isdigit() else None


def standard_schema(value: str, version: int) -> str | None:
    """The term for a primitive or geospatial schema given as a term or as its DTMI."""
    if value in PRIMITIVES or value in GEOSPATIAL:
        return value
    for prefix, terms in (
        ("dtmi:dtdl:instance:Schema:", PRIMITIVES),
        ("dtmi:standard:schema:geospatial:", GEOSPATIAL),
    ):
        if value.startswith(prefix):
            term, _, ver = value[len(prefix) :].partition(";")
            if term in terms and ver in {"2", str(version)}:
                return term
    return None
