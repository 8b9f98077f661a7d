"""The rules the reader enforces, each with the place in the DTDL specification that states it.

Section names refer to the DTDL v2 reference (``DTDL.v2.md``), the DTDL v3 normative
specification (``DTDL.Specification.v3.md``, "v3 Spec") and the QuantitativeTypes v1 extension
(``DTDL.quantitativeTypes.v1.md``) in Azure/opendigitaltwins-dtdl. Where the v3 Spec names a
conformance test (``Requirement-…V3``) we quote it: it is the most precise pointer there is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    spec: str


_ALL = (
    # documents and contexts
    Rule("document-shape", "v3 Spec §DTDL element: a document is an object or an array of objects"),
    Rule("top-level-interface", "v3 Spec §Partitions (Requirement-TopLevelRootableV3)"),
    Rule("context", "v2 §Context, v3 Spec §Context: dtmi:dtdl:context;2 or ;3 on top-level"),
    # identifiers
    Rule(
        "dtmi-syntax", "v2 §Digital Twin Model Identifier, v3 Spec §Digital Twin Model Identifier"
    ),
    Rule(
        "dtmi-reserved",
        "v3 Spec §DTMI (Requirement-DtmiReservedPrefixesV3): dtmi:dtdl:, dtmi:standard:",
    ),
    Rule("dtmi-length", "v2/v3 §DTMI: max 2048 characters, 128 for an Interface"),
    Rule("id-required", "v2/v3 §Interface and §Interface schemas: @id is required"),
    Rule(
        "id-duplicate",
        "v3 Spec §<class> @id (Requirement-Class…IdDuplicateV3): unique in the model",
    ),
    # @type and members
    Rule("type-required", "v2/v3 §<class>: @type is required"),
    Rule("type-class", "v3 Spec §<class> @type (Requirement-Class…TypeIncludesMaterialV3)"),
    Rule("type-syntax", "v3 Spec §<class> @type: strings; no invalid DTMI, no ':' outside dtmi:"),
    Rule("member-required", "v2/v3 §<class>: required member"),
    Rule("member-type", "v2/v3 §<class>: data type of the member"),
    Rule(
        "member-undefined",
        "v2 §Undefined co-types and properties; v3 Spec (…FormallyUndefinedTermV3)",
    ),
    Rule("keyword", "v3 Spec (Requirement-Class…InvalidKeywordsV3): only @context, @id, @type"),
    Rule("name-pattern", "v2/v3 §<class> name: ^[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?$"),
    Rule("name-length", "v2 §<class> name: max 64 characters; v3 Spec: max 512"),
    Rule("name-unique", "v2/v3 §<class> name: unique among contents (after extends), fields, …"),
    Rule("text", "v2 §Display string localization, v3 Spec §Localizable string; length limits"),
    Rule(
        "set-size", "v2 §Interface/§Enum/§Object/§Relationship limits: 300 contents, 2 extends, …"
    ),
    # schemas
    Rule("schema-unknown", "v2/v3 §Primitive schema, §Geospatial Schemas, §Complex schema"),
    Rule("schema-unresolved", "v3 Spec §Model completeness: a dependent reference SHALL resolve"),
    Rule("schema-scope", "v3 Spec §Partitions and referenceability; v2 §Interface schemas"),
    Rule(
        "schema-class",
        "v2/v3 §<class> schema: Array, Enum, Map or Object (Interface only in Component)",
    ),
    Rule("schema-cycle", "v3 Spec §DTDL element (Requirement-NoPathToSelfV3)"),
    Rule("schema-depth", "v2/v3 §Complex schema: max depth of nested complex schemas is 5"),
    Rule(
        "property-array", "v2 §Limits and exclusions: no Array or geospatial schema in a Property"
    ),
    Rule("enum-value-schema", "v2/v3 §Enum valueSchema: integer or string"),
    Rule("enum-value", "v2/v3 §EnumValue enumValue: of the valueSchema type, unique in the Enum"),
    Rule("map-key", "v2/v3 §MapKey: schema must be string"),
    # semantic types and units
    Rule(
        "semantic-unit", "v2 §Semantic Type; QuantitativeTypes v1: unit of the matching unit type"
    ),
    Rule("semantic-schema", "v2 §Semantic Type; QuantitativeTypes v1: schema must be numeric"),
    Rule(
        "semantic-context",
        "v3 Changes from Version 2: semantic types need the QuantitativeTypes context",
    ),
    Rule(
        "unit-without-semantic-type",
        "v2 §Telemetry/§Property unit: disallowed without semantic type",
    ),
    # cross-interface
    Rule("extends-unresolved", "v3 Spec §Interface extends (…ExtendsDependentReferenceV3)"),
    Rule("extends-class", "v2/v3 §Interface extends: values are Interfaces"),
    Rule("extends-cycle", "v3 Spec §DTDL element (Requirement-NoPathToSelfV3)"),
    Rule(
        "extends-depth", "v3 Spec §Limits (Requirement-ClassInterfacePropertiesExtendsMaxDepthV3)"
    ),
    Rule("extends-count", "v2 §Interface: max 2 extends; v3 Spec §Limits: max 1024 in hierarchy"),
    Rule("component-unresolved", "v3 Spec §Component schema (…SchemaDependentReferenceV3)"),
    Rule("component-class", "v2/v3 §Component schema: must be an Interface"),
    Rule("component-nested", "v2/v3 §Component: a Component cannot contain another Component"),
    Rule("contents-count", "v2 §Interface: max 300 contents incl. extends; v3: 100,000 elements"),
    Rule(
        "multiplicity",
        "v2/v3 §Relationship: minMultiplicity = 0, 1 <= maxMultiplicity (v2: <= 500)",
    ),
    Rule("command-type", "v2/v3 §Command commandType: synchronous or asynchronous (deprecated)"),
    # IoT Central device templates
    Rule("template", "IoT Central REST API §Device templates: @type DeviceModel, capabilityModel"),
)

RULES: Mapping[str, Rule] = {rule.id: rule for rule in _ALL}
