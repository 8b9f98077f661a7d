"""Rule documents (docs/templates-format.md) parsed into frozen dataclasses.

:func:`parse_rule` checks the shape and names every problem by its JSON path
(``$.conditions.items[0].window``); :func:`check_against_template` then checks the fields
against the target template (the field exists, a telemetry aggregation is over a number, a
command exists). Both raise :class:`RuleInvalid` with the whole list, so one answer fixes a
document.

Extensions of the documented format, all optional: ``noData.minutes`` may be fractional
(or ``noData.duration`` an ISO 8601 duration); ``geofence.source`` (``telemetry`` |
``property``) says where ``location`` comes from when the template does not; ``webhook.headers``
adds request headers; ``email.subject`` overrides the subject.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeAlias

from aislehub.errors import BadRequest
from aislehub.hub.templates import CompiledTemplate, is_template_id
from aislehub.models.elements import GeoSchema, ObjectSchema, Primitive, Schema

__all__ = [
    "Action",
    "Condition",
    "Rule",
    "RuleInvalid",
    "check_against_template",
    "parse_duration_ms",
    "parse_rule",
]

Json = dict[str, Any]
Operator = Literal["=", "!=", ">", ">=", "<", "<="]
Severity = Literal["info", "warning", "critical"]
Scalar = float | str | bool

OPERATORS: tuple[str, ...] = ("=", "!=", ">", ">=", "<", "<=")
ORDERING = frozenset({">", ">=", "<", "<="})
AGGREGATIONS = ("avg", "min", "max", "sum", "count")
SEVERITIES = ("info", "warning", "critical")
_RULE_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,126}[a-z0-9])?")  # a lower-case slug
_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9_]{0,510}[A-Za-z0-9])?")  # a DTDL name (v3 §name)
_NUMERIC = frozenset({"double", "float", "integer", "long"})
MAX_CONDITIONS = 10  # IoT Central allows 5 conditions per rule; twice that is plenty
MAX_ACTIONS = 10
# A window is at least a second (shorter is a per-message condition) and at most a week.
MIN_WINDOW_MS, MAX_WINDOW_MS = 1_000, 7 * 86_400_000
_DURATION = re.compile(
    r"P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_UNIT_MS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000}


class RuleInvalid(BadRequest):
    """A rule document breaks the format; ``errors`` lists ``(json path, problem)``."""

    code = "InvalidRule"

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors = list(errors)
        shown = "; ".join(f"{path}: {problem}" for path, problem in self.errors[:10])
        more = f" (and {len(self.errors) - 10} more)" if len(self.errors) > 10 else ""
        super().__init__(f"The rule is invalid: {shown}{more}.")


@dataclass(frozen=True, slots=True)
class FieldRef:
    component: str | None
    name: str

    @property
    def text(self) -> str:
        return self.name if self.component is None else f"{self.component}.{self.name}"


@dataclass(frozen=True, slots=True)
class TelemetryCondition:
    field: FieldRef
    operator: Operator
    value: Scalar
    aggregation: str | None = None
    window_ms: int | None = None
    window_type: Literal["tumbling", "sliding"] = "tumbling"


@dataclass(frozen=True, slots=True)
class PropertyCondition:
    field: FieldRef
    operator: Operator
    value: Scalar


@dataclass(frozen=True, slots=True)
class LatLon:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class GeofenceCondition:
    location: FieldRef
    center: FieldRef | LatLon  # a device property (reported or cloud) or a literal point
    radius_m: float
    source: Literal["telemetry", "property"] | None = None  # None: as the template says


@dataclass(frozen=True, slots=True)
class NoDataCondition:
    duration_ms: int


Condition: TypeAlias = TelemetryCondition | PropertyCondition | GeofenceCondition | NoDataCondition


@dataclass(frozen=True, slots=True)
class WebhookAction:
    url: str
    secret: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class EmailAction:
    to: tuple[str, ...]
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class CommandAction:
    name: str
    component: str | None = None
    request: Any = None


@dataclass(frozen=True, slots=True)
class JobAction:
    job: Json


Action: TypeAlias = WebhookAction | EmailAction | CommandAction | JobAction


@dataclass(frozen=True, slots=True)
class Target:
    template: str
    device_group: str | None = None
    filter: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    display_name: str
    enabled: bool
    severity: Severity
    target: Target
    match: Literal["all", "any"]
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]


def parse_duration_ms(text: str) -> int | None:
    """Milliseconds of an ISO 8601 duration of weeks, days, hours, minutes and seconds.

    Years and months have no fixed length, so they are refused (None), as is ``P``/``PT``.
    """
    found = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if found is None or text in ("P", "PT") or text.endswith("T"):
        return None
    total = sum(float(v) * _UNIT_MS[k] for k, v in found.groupdict().items() if v is not None)
    return round(total)


class _Reader:
    """Collects ``(path, problem)`` while reading a JSON document."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def fail(self, path: str, problem: str) -> None:
        self.errors.append((path, problem))

    def obj(self, value: Any, path: str) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        self.fail(path, "must be an object")
        return {}

    def text(self, doc: Mapping[str, Any], key: str, path: str, required: bool = True) -> str:
        value = doc.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value:
            self.fail(f"{path}.{key}", "must be a non-empty string")
            return ""
        return value

    def choice(
        self, doc: Mapping[str, Any], key: str, path: str, options: Sequence[str], default: str
    ) -> str:
        value = doc.get(key, default)
        if value not in options:
            self.fail(f"{path}.{key}", f"must be one of {', '.join(options)}")
            return default
        return str(value)

    def number(self, doc: Mapping[str, Any], key: str, path: str, positive: bool = False) -> float:
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(f"{path}.{key}", "must be a number")
            return 0.0
        if positive and not value > 0:
            self.fail(f"{path}.{key}", "must be greater than 0")
        return float(value)

    def field(self, doc: Mapping[str, Any], key: str, path: str) -> FieldRef:
        text = self.text(doc, key, path)
        component, dot, name = text.rpartition(".")
        names_ok = _NAME.fullmatch(name) and (not dot or _NAME.fullmatch(component))
        if text and not names_ok:
            self.fail(f"{path}.{key}", "must be a field name or component.field (DTDL names)")
        return FieldRef(component or None, name)


def parse_rule(document: Any, rule_id: str | None = None) -> Rule:
    """The rule in ``document``; ``rule_id`` (a path id) wins over the body's ``id``."""
    r = _Reader()
    doc = r.obj(document, "$")
    rid = rule_id if rule_id is not None else doc.get("id")
    if not isinstance(rid, str) or not _RULE_ID.fullmatch(rid):
        r.fail("$.id", "must be a lower-case slug: a-z, 0-9 and '-', at most 128 characters")
    display = doc.get("displayName", rid)
    if not isinstance(display, str) or not display:
        r.fail("$.displayName", "must be a non-empty string")
    enabled = doc.get("enabled", True)
    if not isinstance(enabled, bool):
        r.fail("$.enabled", "must be true or false")
    severity = r.choice(doc, "severity", "$", SEVERITIES, "warning")
    target = _target(r, r.obj(doc.get("target"), "$.target"))
    match, conditions = _conditions(r, r.obj(doc.get("conditions"), "$.conditions"))
    actions = _actions(r, doc.get("actions", []))
    if r.errors:
        raise RuleInvalid(r.errors)
    return Rule(
        str(rid),
        str(display),
        bool(enabled),
        severity,  # type: ignore[arg-type]
        target,
        match,  # type: ignore[arg-type]
        conditions,
        actions,
    )


def _target(r: _Reader, doc: Mapping[str, Any]) -> Target:
    template = r.text(doc, "template", "$.target")
    if template and not is_template_id(template):
        r.fail("$.target.template", "must be a device template id (a DTMI)")
    group = r.text(doc, "deviceGroup", "$.target", required=False) or None
    text = r.text(doc, "filter", "$.target", required=False) or None
    if text is not None:
        from aislehub.query.device_filter import parse_device_filter
        from aislehub.query.lexer import FilterError

        try:
            parse_device_filter(full_filter(text))
        except FilterError as exc:
            r.fail("$.target.filter", str(exc))
    return Target(template, group, text)


def full_filter(text: str) -> str:
    """A target filter as a device-group filter: a bare condition gets its SELECT."""
    return text if text.lstrip()[:6].upper() == "SELECT" else f"SELECT * FROM devices WHERE {text}"


def _conditions(r: _Reader, doc: Mapping[str, Any]) -> tuple[str, tuple[Condition, ...]]:
    match = r.choice(doc, "match", "$.conditions", ("all", "any"), "all")
    items = doc.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_CONDITIONS:
        r.fail("$.conditions.items", f"must be a list of 1 to {MAX_CONDITIONS} conditions")
        return match, ()
    parsed = [_condition(r, item, f"$.conditions.items[{i}]") for i, item in enumerate(items)]
    return match, tuple(c for c in parsed if c is not None)


def _condition(r: _Reader, item: Any, path: str) -> Condition | None:
    doc = r.obj(item, path)
    kind = doc.get("type")
    if kind == "telemetry":
        return _telemetry(r, doc, path)
    if kind == "property":
        field = r.field(doc, "field", path)
        op, value = _comparison(r, doc, path)
        return PropertyCondition(field, op, value)
    if kind == "geofence":
        return _geofence(r, doc, path)
    if kind == "noData":
        return _no_data(r, doc, path)
    r.fail(f"{path}.type", "must be one of telemetry, property, geofence, noData")
    return None


def _comparison(r: _Reader, doc: Mapping[str, Any], path: str) -> tuple[Operator, Scalar]:
    op = r.choice(doc, "operator", path, OPERATORS, "=")
    value = doc.get("value")
    if not isinstance(value, str | int | float | bool):
        r.fail(f"{path}.value", "must be a number, a string or a boolean")
        value = 0.0
    elif op in ORDERING and (isinstance(value, bool) or not isinstance(value, int | float)):
        r.fail(f"{path}.value", f"must be a number for operator {op!r}")
    if isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return op, value  # type: ignore[return-value]


def _telemetry(r: _Reader, doc: Mapping[str, Any], path: str) -> TelemetryCondition:
    field = r.field(doc, "field", path)
    op, value = _comparison(r, doc, path)
    aggregation = doc.get("aggregation")
    if aggregation is None:
        return TelemetryCondition(field, op, value)
    if aggregation not in AGGREGATIONS:
        r.fail(f"{path}.aggregation", f"must be one of {', '.join(AGGREGATIONS)}")
    if isinstance(value, bool | str):
        r.fail(f"{path}.value", "must be a number when the condition aggregates")
    window = parse_duration_ms(doc.get("window", ""))
    if window is None or not MIN_WINDOW_MS <= window <= MAX_WINDOW_MS:
        r.fail(f"{path}.window", "must be an ISO 8601 duration from PT1S to P7D, e.g. PT5M")
        window = MIN_WINDOW_MS
    kind = r.choice(doc, "windowType", path, ("tumbling", "sliding"), "tumbling")
    return TelemetryCondition(field, op, value, str(aggregation), window, kind)  # type: ignore[arg-type]


def _geofence(r: _Reader, doc: Mapping[str, Any], path: str) -> GeofenceCondition:
    location = r.field(doc, "location", path)
    radius = r.number(doc, "radiusMeters", path, positive=True)
    source = doc.get("source")
    if source not in (None, "telemetry", "property"):
        r.fail(f"{path}.source", "must be telemetry or property")
        source = None
    raw = r.obj(doc.get("center"), f"{path}.center")
    center: FieldRef | LatLon
    if "property" in raw:
        center = r.field(raw, "property", f"{path}.center")
    else:
        lat = r.number(raw, "lat", f"{path}.center")
        lon = r.number(raw, "lon", f"{path}.center")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            r.fail(f"{path}.center", "lat must be within ±90 and lon within ±180")
        center = LatLon(lat, lon)
    return GeofenceCondition(location, center, radius, source)  # type: ignore[arg-type]


def _no_data(r: _Reader, doc: Mapping[str, Any], path: str) -> NoDataCondition:
    if "duration" in doc:
        ms = parse_duration_ms(doc["duration"])
        if ms is None or ms < MIN_WINDOW_MS:
            r.fail(f"{path}.duration", "must be an ISO 8601 duration of at least PT1S")
        return NoDataCondition(ms or MIN_WINDOW_MS)
    minutes = r.number(doc, "minutes", path, positive=True)
    if 0 < minutes * 60_000 < MIN_WINDOW_MS:
        r.fail(f"{path}.minutes", "must be at least one second (1/60)")
    return NoDataCondition(max(MIN_WINDOW_MS, round(minutes * 60_000)))


def _actions(r: _Reader, raw: Any) -> tuple[Action, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_ACTIONS:
        r.fail("$.actions", f"must be a list of at most {MAX_ACTIONS} actions")
        return ()
    parsed = [
        _action(r, r.obj(item, f"$.actions[{i}]"), f"$.actions[{i}]") for i, item in enumerate(raw)
    ]
    return tuple(a for a in parsed if a is not None)


def _action(r: _Reader, doc: Mapping[str, Any], path: str) -> Action | None:
    kind = doc.get("type")
    if kind == "webhook":
        url = r.text(doc, "url", path)
        if url and not url.startswith(("http://", "https://")):
            r.fail(f"{path}.url", "must be an http:// or https:// URL")
        secret = r.text(doc, "secret", path, required=False) or None
        headers = r.obj(doc.get("headers", {}), f"{path}.headers")
        if not all(isinstance(v, str) for v in headers.values()):
            r.fail(f"{path}.headers", "values must be strings")
        return WebhookAction(url, secret, tuple((str(k), str(v)) for k, v in headers.items()))
    if kind == "email":
        to = doc.get("to")
        if isinstance(to, str):
            to = [to]
        if not isinstance(to, list) or not to or not all(_is_address(a) for a in to):
            r.fail(f"{path}.to", "must be a list of e-mail addresses")
            to = []
        subject = r.text(doc, "subject", path, required=False) or None
        return EmailAction(tuple(to), subject)
    if kind == "command":
        name = r.text(doc, "name", path)
        component = r.text(doc, "component", path, required=False) or None
        return CommandAction(name, component, doc.get("request"))
    if kind == "job":
        return JobAction(dict(r.obj(doc.get("job"), f"{path}.job")))
    r.fail(f"{path}.type", "must be one of webhook, email, command, job")
    return None


def _is_address(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[^@\s]+@[^@\s]+", value) is not None


# -- checks against the template -------------------------------------------------------


def check_against_template(rule: Rule, template: CompiledTemplate | None) -> Rule:
    """Every field, location and command the rule names exists in ``template`` and fits.

    Returns the rule with what the template decides filled in (a geofence's ``source``).
    """
    if template is None:
        raise RuleInvalid(
            [("$.target.template", f"device template {rule.target.template!r} was not found")]
        )
    rule = replace(rule, conditions=tuple(_resolve(c, template) for c in rule.conditions))
    errors: list[tuple[str, str]] = []
    for i, cond in enumerate(rule.conditions):
        path = f"$.conditions.items[{i}]"
        errors += [(f"{path}.{key}", problem) for key, problem in _check_condition(cond, template)]
    for i, action in enumerate(rule.actions):
        if isinstance(action, CommandAction):
            model = template.model
            if action.component is not None and model.interface(action.component) is None:
                errors.append((f"$.actions[{i}].component", "is not a component of the template"))
            elif model.command(action.component, action.name) is None:
                errors.append((f"$.actions[{i}].name", "is not a command of the template"))
    if errors:
        raise RuleInvalid(errors)
    return rule


def _resolve(cond: Condition, template: CompiledTemplate) -> Condition:
    if isinstance(cond, GeofenceCondition) and cond.source is None:
        found = _telemetry_schema(template, cond.location) is not None
        return replace(cond, source="telemetry" if found else "property")
    return cond


def _check_condition(cond: Condition, template: CompiledTemplate) -> list[tuple[str, str]]:
    if isinstance(cond, TelemetryCondition):
        found = _telemetry_schema(template, cond.field)
        if found is None:
            return [("field", f"{cond.field.text!r} is not a telemetry field of the template")]
        if (cond.aggregation not in (None, "count") or cond.operator in ORDERING) and not _numeric(
            found
        ):
            return [("field", f"{cond.field.text!r} is not numeric")]
        return []
    if isinstance(cond, PropertyCondition):
        schema = _property_schema(template, cond.field)
        if schema is None:
            return [("field", f"{cond.field.text!r} is not a property of the template")]
        if cond.operator in ORDERING and not _numeric(schema):
            return [("field", f"{cond.field.text!r} is not numeric")]
        return []
    if isinstance(cond, GeofenceCondition):
        return _check_geofence(cond, template)
    return []


def _check_geofence(cond: GeofenceCondition, template: CompiledTemplate) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    schema = (
        _telemetry_schema(template, cond.location)
        if cond.source == "telemetry"
        else _property_schema(template, cond.location)
    )
    if schema is None:
        problems.append(
            ("location", f"{cond.location.text!r} is not a {cond.source} of the template")
        )
    elif not _geo_point(schema):
        problems.append(("location", f"{cond.location.text!r} is not a location (geopoint)"))
    if isinstance(cond.center, FieldRef):
        center = _property_schema(template, cond.center)
        if center is None:
            problems.append(
                ("center.property", f"{cond.center.text!r} is not a property of the template")
            )
        elif not _geo_point(center):
            problems.append(("center.property", f"{cond.center.text!r} is not a location"))
    return problems


def _telemetry_schema(template: CompiledTemplate, ref: FieldRef) -> Schema | None:
    found = template.model.telemetry(ref.component, ref.name)
    return found.schema if found is not None else None


def _property_schema(template: CompiledTemplate, ref: FieldRef) -> Schema | None:
    found = template.model.property(ref.component, ref.name)
    if found is None and ref.component is None:
        found = template.cloud.get(ref.name)
    return found.schema if found is not None else None


def _numeric(schema: Schema) -> bool:
    return isinstance(schema, Primitive) and schema.name in _NUMERIC


def _geo_point(schema: Schema) -> bool:
    if isinstance(schema, GeoSchema):
        return schema.kind in ("point", "geopoint")
    if isinstance(schema, ObjectSchema):  # an object with lat and lon
        names = {f.name for f in schema.fields}
        return {"lat", "lon"} <= names
    return False


def rule_fields(rule: Rule) -> set[tuple[str | None, str]]:
    """The telemetry fields (component, name) whose values the rule reads from messages."""
    out: set[tuple[str | None, str]] = set()
    for cond in rule.conditions:
        if isinstance(cond, TelemetryCondition):
            out.add((cond.field.component, cond.field.name))
        elif isinstance(cond, GeofenceCondition) and cond.source != "property":
            out.add((cond.location.component, cond.location.name))
    return out
