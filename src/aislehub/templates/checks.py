"""Checks of ``rules.json`` and ``dashboard.json`` against docs/templates-format.md, and of
every field they name against the device template they target.

Each check returns a list of problems (``path: message``), empty when the document fits:
the shapes are data another team interprets, so the checker says everything wrong at once
rather than stopping at the first problem. When :mod:`aislehub.rules` ships its own model,
the tests validate with it too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aislehub.models import Command, Property, Telemetry, load_iot_central_template
from aislehub.templates import AppTemplate

__all__ = ["TemplateFields", "check_app_template", "check_dashboard", "check_rule"]

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
SEVERITIES = ("info", "warning", "critical")
OPERATORS = ("=", "!=", ">", ">=", "<", "<=")
AGGREGATIONS = ("avg", "min", "max", "sum", "count")
WINDOW_TYPES = ("tumbling", "sliding")
ACTIONS = ("webhook", "email", "command", "job")
TILES = ("kpi", "lineChart", "lkv", "map", "alerts", "table")
KPI_METRICS = ("devicesOnline", "devicesOffline", "messagesToday", "openAlerts")
SYSTEM_COLUMNS = ("$id", "$displayName", "$template", "$provisioned", "$simulated", "$enabled")


@dataclass(frozen=True, slots=True)
class TemplateFields:
    """What a template declares, by the names rules and dashboards use (``comp.field``)."""

    template_id: str
    telemetry: frozenset[str]
    numeric: frozenset[str]
    properties: frozenset[str]  # reported, writable and cloud
    commands: frozenset[str]

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> TemplateFields:
        parsed = load_iot_central_template(document)
        model = parsed.models.root(parsed.root_id)
        views = [("", model.root), *((f"{n}.", v) for n, v in model.components.items())]
        contents = [(prefix, c) for prefix, view in views for c in view.contents]
        telemetry = {p + c.name: c for p, c in contents if isinstance(c, Telemetry)}
        numeric = {k for k, t in telemetry.items() if getattr(t.schema, "name", None) in _NUMBERS}
        props = {p + c.name for p, c in contents if isinstance(c, Property)}
        props |= {c.name for c in parsed.cloud_properties}
        commands = {p + c.name for p, c in contents if isinstance(c, Command)}
        return cls(
            str(document["@id"]),
            frozenset(telemetry),
            frozenset(numeric),
            frozenset(props),
            frozenset(commands),
        )


_NUMBERS = frozenset({"double", "float", "integer", "long"})


def _expect(ok: bool, path: str, message: str) -> list[str]:
    return [] if ok else [f"{path}: {message}"]


def _one_of(value: Any, allowed: Iterable[str], path: str) -> list[str]:
    allowed = tuple(allowed)
    return _expect(value in allowed, path, f"{value!r} is not one of {', '.join(allowed)}")


def check_rule(rule: Any, fields: TemplateFields | None = None, path: str = "rule") -> list[str]:
    """Problems of one rule object (and of the fields it names, given the template)."""
    if not isinstance(rule, Mapping):
        return [f"{path}: a rule is an object"]
    problems = _expect(
        isinstance(rule.get("id"), str) and bool(SLUG.match(rule["id"])),
        f"{path}.id",
        "a lower-case slug is required",
    )
    problems += _expect(
        isinstance(rule.get("displayName"), str), f"{path}.displayName", "a string is required"
    )
    problems += _expect(isinstance(rule.get("enabled", True), bool), f"{path}.enabled", "a boolean")
    problems += _one_of(rule.get("severity"), SEVERITIES, f"{path}.severity")
    problems += _check_target(rule.get("target"), fields, f"{path}.target")
    conditions = rule.get("conditions")
    if not isinstance(conditions, Mapping):
        return [*problems, f"{path}.conditions: an object with match and items"]
    problems += _one_of(conditions.get("match", "all"), ("all", "any"), f"{path}.conditions.match")
    items = conditions.get("items")
    if not isinstance(items, list) or not items:
        problems.append(f"{path}.conditions.items: a non-empty list")
        items = []
    for i, item in enumerate(items):
        problems += _check_condition(item, fields, f"{path}.conditions.items[{i}]")
    actions = rule.get("actions", [])
    if not isinstance(actions, list):
        return [*problems, f"{path}.actions: a list"]
    for i, action in enumerate(actions):
        kind = action.get("type") if isinstance(action, Mapping) else None
        problems += _one_of(kind, ACTIONS, f"{path}.actions[{i}].type")
        if kind == "command" and fields is not None:
            name = action.get("name")
            comp = action.get("component")
            full = f"{comp}.{name}" if comp else name
            problems += _expect(
                full in fields.commands,
                f"{path}.actions[{i}].name",
                f"the template has no command {full!r}",
            )
    return problems


def _check_target(target: Any, fields: TemplateFields | None, path: str) -> list[str]:
    if not isinstance(target, Mapping) or not isinstance(target.get("template"), str):
        return [f"{path}: an object naming the template"]
    if fields is not None and target["template"] != fields.template_id:
        return [f"{path}.template: {target['template']!r} is not {fields.template_id!r}"]
    return []


def _check_condition(item: Any, fields: TemplateFields | None, path: str) -> list[str]:
    if not isinstance(item, Mapping):
        return [f"{path}: a condition is an object"]
    kind = item.get("type")
    check = _CONDITIONS.get(kind) if isinstance(kind, str) else None
    if check is None:
        return [f"{path}.type: {kind!r} is not one of {', '.join(_CONDITIONS)}"]
    return check(item, fields, path)


def _telemetry_condition(
    item: Mapping[str, Any], fields: TemplateFields | None, path: str
) -> list[str]:
    field = item.get("field")
    problems = _one_of(item.get("operator"), OPERATORS, f"{path}.operator")
    problems += _expect("value" in item, f"{path}.value", "a value is required")
    if fields is not None:
        problems += _expect(
            field in fields.telemetry, f"{path}.field", f"the template has no telemetry {field!r}"
        )
    if "aggregation" not in item:
        return problems
    problems += _one_of(item["aggregation"], AGGREGATIONS, f"{path}.aggregation")
    problems += _expect(
        isinstance(item.get("window"), str) and bool(DURATION.match(item["window"])),
        f"{path}.window",
        "an ISO 8601 duration is required with an aggregation",
    )
    problems += _one_of(item.get("windowType", "tumbling"), WINDOW_TYPES, f"{path}.windowType")
    if fields is not None and item["aggregation"] != "count" and field in fields.telemetry:
        problems += _expect(
            field in fields.numeric,
            f"{path}.field",
            f"{item['aggregation']} needs a numeric telemetry, not {field!r}",
        )
    return problems


def _property_condition(
    item: Mapping[str, Any], fields: TemplateFields | None, path: str
) -> list[str]:
    problems = _one_of(item.get("operator"), OPERATORS, f"{path}.operator")
    problems += _expect("value" in item, f"{path}.value", "a value is required")
    if fields is not None:
        problems += _expect(
            item.get("field") in fields.properties,
            f"{path}.field",
            f"the template has no property {item.get('field')!r}",
        )
    return problems


def _geofence_condition(
    item: Mapping[str, Any], fields: TemplateFields | None, path: str
) -> list[str]:
    radius = item.get("radiusMeters")
    problems = _expect(
        isinstance(radius, int | float) and radius > 0, f"{path}.radiusMeters", "a positive number"
    )
    center = item.get("center")
    if not isinstance(center, Mapping) or not (
        "property" in center or ("lat" in center and "lon" in center)
    ):
        problems.append(f"{path}.center: {{'property': name}} or {{'lat', 'lon'}}")
    if fields is not None:
        location = item.get("location")
        problems += _expect(
            location in fields.telemetry | fields.properties,
            f"{path}.location",
            f"the template has no telemetry or property {location!r}",
        )
        if isinstance(center, Mapping) and "property" in center:
            problems += _expect(
                center["property"] in fields.properties,
                f"{path}.center",
                f"the template has no property {center['property']!r}",
            )
    return problems


def _no_data_condition(
    item: Mapping[str, Any], fields: TemplateFields | None, path: str
) -> list[str]:
    minutes = item.get("minutes")
    return _expect(
        isinstance(minutes, int | float) and minutes > 0,
        f"{path}.minutes",
        "a positive number of minutes",
    )


_CONDITIONS = {
    "telemetry": _telemetry_condition,
    "property": _property_condition,
    "geofence": _geofence_condition,
    "noData": _no_data_condition,
}


def check_dashboard(
    dashboard: Any, fields: TemplateFields | None = None, rule_ids: Iterable[str] = ()
) -> list[str]:
    """Problems of a dashboard object; with the template, the fields and rules it names."""
    if not isinstance(dashboard, Mapping):
        return ["dashboard: an object"]
    problems = _expect(
        isinstance(dashboard.get("id"), str) and bool(SLUG.match(dashboard["id"])),
        "dashboard.id",
        "a lower-case slug is required",
    )
    problems += _expect(
        isinstance(dashboard.get("displayName"), str),
        "dashboard.displayName",
        "a string is required",
    )
    if fields is not None:
        problems += _expect(
            dashboard.get("template") == fields.template_id,
            "dashboard.template",
            f"{dashboard.get('template')!r} is not {fields.template_id!r}",
        )
    tiles = dashboard.get("tiles")
    if not isinstance(tiles, list) or not tiles:
        return [*problems, "dashboard.tiles: a non-empty list"]
    known_rules = frozenset(rule_ids)
    for i, tile in enumerate(tiles):
        problems += _check_tile(tile, fields, known_rules, f"dashboard.tiles[{i}]")
    return problems


def _check_tile(
    tile: Any, fields: TemplateFields | None, rules: frozenset[str], path: str
) -> list[str]:
    if not isinstance(tile, Mapping):
        return [f"{path}: a tile is an object"]
    kind = tile.get("type")
    problems = _one_of(kind, TILES, f"{path}.type")
    problems += _expect(isinstance(tile.get("title"), str), f"{path}.title", "a string")
    telemetry = set(tile.get("telemetry", []) if kind in ("lineChart", "lkv") else [])
    if kind == "kpi":
        problems += _check_kpi(tile.get("metric"), fields, f"{path}.metric")
    elif kind == "lineChart":
        problems += _one_of(tile.get("aggregation", "avg"), AGGREGATIONS, f"{path}.aggregation")
        problems += _expect(
            bool(DURATION.match(str(tile.get("range", "")))),
            f"{path}.range",
            "an ISO 8601 duration",
        )
    elif kind == "map":
        telemetry |= {tile.get("location")} - (fields.properties if fields else set())
        anchor = tile.get("anchor")
        if fields is not None and isinstance(anchor, Mapping) and "property" in anchor:
            problems += _expect(
                anchor["property"] in fields.properties,
                f"{path}.anchor",
                f"the template has no property {anchor['property']!r}",
            )
    elif kind == "alerts" and rules:
        unknown = [r for r in tile.get("rules", []) if r not in rules]
        problems += _expect(not unknown, f"{path}.rules", f"unknown rules {unknown}")
    elif kind == "table" and fields is not None:
        columns = fields.properties | fields.telemetry | set(SYSTEM_COLUMNS)
        unknown = [c for c in tile.get("columns", []) if c not in columns]
        problems += _expect(not unknown, f"{path}.columns", f"unknown columns {unknown}")
    if fields is not None:
        unknown = sorted(str(t) for t in telemetry if t not in fields.telemetry)
        problems += _expect(not unknown, f"{path}.telemetry", f"unknown telemetry {unknown}")
    return problems


def _check_kpi(metric: Any, fields: TemplateFields | None, path: str) -> list[str]:
    if isinstance(metric, str):
        return _one_of(metric, KPI_METRICS, path)
    if not isinstance(metric, Mapping):
        return [f"{path}: a metric name or an explorer query object"]
    problems = _one_of(metric.get("aggregation"), AGGREGATIONS, f"{path}.aggregation")
    if fields is not None:
        problems += _expect(
            metric.get("telemetry") in fields.numeric,
            f"{path}.telemetry",
            f"no numeric telemetry {metric.get('telemetry')!r}",
        )
    return problems


def check_app_template(app: AppTemplate) -> list[str]:
    """Every problem of one application template's rules and dashboard."""
    fields = TemplateFields.of(app.template)
    problems = []
    if not isinstance(app.rules, list):
        return [f"{app.name}/rules.json: a JSON array"]
    for i, rule in enumerate(app.rules):
        problems += check_rule(rule, fields, f"rules[{i}]")
    ids = [r.get("id") for r in app.rules if isinstance(r, Mapping)]
    problems += _expect(len(ids) == len(set(ids)), "rules", "rule ids must be unique")
    problems += check_dashboard(app.dashboard, fields, [i for i in ids if isinstance(i, str)])
    return [f"{app.name}: {p}" for p in problems]
