"""Property queries (contract §4.2): one row per device of the template, current values.

Deprecated upstream (2022-10-31-preview rate-limits them and announced their removal), so
they are answered simply: the caller hands over each device's reported twin and cloud
properties, and WHERE, ORDER BY and TOP run here, in Python, over at most a few thousand
devices. A writable property acknowledged the Plug and Play way (``{"value": v, "ac": …}``)
counts as ``v``, as the device-group filters read it. A device without the property has
no value: it matches no comparison and sorts last.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aislehub.query.iotc_query import (
    AliasRef,
    Comparison,
    Condition,
    FieldRef,
    InList,
    Junction,
    Operand,
    SelectItem,
)
from aislehub.query.iotc_sql import PropertyPlan

__all__ = ["DeviceProperties", "property_rows"]

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeviceProperties:
    id: str
    provisioned: bool
    simulated: bool
    reported: Json = field(default_factory=dict)
    cloud: Json = field(default_factory=dict)


def property_rows(plan: PropertyPlan, devices: Iterable[DeviceProperties]) -> list[Json]:
    q = plan.query
    matching = [d for d in devices if q.where is None or _matches(plan, q.where, d)]
    for order in reversed(q.order or ()):
        operand, descending = order.operand, order.descending
        values = {d.id: _sort_key(_value(plan, operand, d), descending) for d in matching}
        matching.sort(key=lambda d: values[d.id], reverse=descending)
    if not q.order:
        matching.sort(key=lambda d: d.id)
    return [_row(plan, d) for d in matching[: plan.limit]]


def _row(plan: PropertyPlan, device: DeviceProperties) -> Json:
    return {item.key: _field(plan, _ref(item), device) for item in plan.query.items}


def _ref(item: SelectItem) -> FieldRef:
    assert isinstance(item.expr, FieldRef)  # the planner refused aggregates
    return item.expr


def _value(plan: PropertyPlan, operand: Operand, device: DeviceProperties) -> Any:
    if isinstance(operand, AliasRef):
        return _field(plan, _ref(plan.query.item(operand.alias)), device)
    key = next((i for i in plan.query.items if i.key == operand.name), None)
    return _field(plan, _ref(key) if key else operand, device)


def _field(plan: PropertyPlan, ref: FieldRef, device: DeviceProperties) -> Any:
    if ref.system:
        return {"$id": device.id, "$provisioned": device.provisioned}.get(
            ref.name, device.simulated
        )
    resolved = plan.fields[ref.name]
    if resolved.role == "cloud":
        return device.cloud.get(ref.name)
    scope: Any = device.reported
    if ref.component is not None:
        scope = scope.get(ref.component)
    value = scope.get(ref.capability) if isinstance(scope, dict) else None
    if resolved.writable and isinstance(value, dict) and "value" in value:
        return value["value"]
    return value


def _matches(plan: PropertyPlan, cond: Condition, device: DeviceProperties) -> bool:
    match cond:
        case Comparison(operand=operand, op=op, value=wanted):
            return _compare(_value(plan, operand, device), op, wanted)
        case InList(operand=operand, values=values):
            value = _value(plan, operand, device)
            return any(_compare(value, "=", v) for v in values)
        case Junction(op="AND", terms=terms):
            return all(_matches(plan, t, device) for t in terms)
        case Junction(terms=terms):
            return any(_matches(plan, t, device) for t in terms)
    return False  # WITHIN_WINDOW: refused by the planner


def _compare(value: Any, op: str, wanted: Any) -> bool:
    if value is None or isinstance(value, bool) != isinstance(wanted, bool):
        return False
    if isinstance(wanted, str) != isinstance(value, str):
        return False
    if not isinstance(value, str | int | float):
        return False
    result: bool = {
        "=": value == wanted,
        "!=": value != wanted,
        "<": value < wanted,
        "<=": value <= wanted,
        ">": value > wanted,
        ">=": value >= wanted,
    }[op]
    return result


def _sort_key(value: Any, descending: bool) -> tuple[int, int, Any]:
    """Missing values last either way; numbers, then strings, then anything by its text."""
    if value is None:
        return (0 if descending else 1, 0, 0)
    present = 1 if descending else 0
    if isinstance(value, bool | int | float):
        return (present, 0, value)
    return (present, 1, value) if isinstance(value, str) else (present, 2, repr(value))
