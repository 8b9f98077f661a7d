"""A parsed device filter (``aislehub.query.device_filter``) as a WHERE clause on ``devices``.

System fields are columns. A capability (``prop`` or ``component.prop``) is read from the
device twin's reported document, where a writable property acknowledged the Plug and Play way
holds ``{"value": v, "ac": …}`` (so ``value`` is read first); a root property may also be a
cloud property. Each is a correlated scalar subquery, so the clause drops into any query on
``devices``. The JSON paths are SQLAlchemy's, rendered for SQLite and PostgreSQL alike.

A device without the property does not match ``=``, ``!=`` or an ordering: SQL's NULL
comparison, and what IoT Central's filters do with a device that never reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from aislehub.query.device_filter import (
    Comparison,
    Condition,
    DeviceFilter,
    FieldRef,
    InList,
    Junction,
    Not,
    Value,
)
from aislehub.store.schema import cloud_properties, devices, twins

_COLUMNS: dict[str, sa.ColumnElement[Any]] = {
    "$id": devices.c.id,
    "$displayName": devices.c.display_name,
    "$template": devices.c.template,
    "$provisioned": devices.c.provisioned,
    "$simulated": devices.c.simulated,
    "$enabled": devices.c.enabled,
    # IoT Central supports one organization per device (§2.1): compare with the first.
    "$organizations": devices.c.organizations[0].as_string(),
}

_COMPARE: dict[str, Callable[[Any, Value], sa.ColumnElement[bool]]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def filter_clause(parsed: DeviceFilter) -> sa.ColumnElement[bool]:
    parts: list[sa.ColumnElement[bool]] = []
    if parsed.template is not None:
        parts.append(devices.c.template == parsed.template)
    if parsed.where is not None:
        parts.append(_condition(parsed.where))
    return sa.and_(sa.true(), *parts)


def _condition(cond: Condition) -> sa.ColumnElement[bool]:
    match cond:
        case Comparison(field=field, op=op, value=value):
            return _COMPARE[op](_operand(field, value), value)
        case InList(field=field, values=values):
            return _operand(field, values[0]).in_(list(values))
        case Junction(op="AND", terms=terms):
            return sa.and_(*(_condition(t) for t in terms))
        case Junction(terms=terms):
            return sa.or_(*(_condition(t) for t in terms))
        case Not(term=term):
            return sa.not_(_condition(term))
    raise AssertionError(f"unknown condition {cond!r}")  # pragma: no cover


def _operand(field: FieldRef, sample: Value) -> sa.ColumnElement[Any]:
    if field.system:
        return _COLUMNS[field.name]
    cast = _cast(sample)
    reported = twins.c.reported
    from_twin = (
        sa.select(
            sa.func.coalesce(cast(reported[(*field.path, "value")]), cast(reported[field.path]))
        )
        .where(
            (twins.c.app_id == devices.c.app_id)
            & (twins.c.device_id == devices.c.id)
            & (twins.c.module_id == "")
        )
        .scalar_subquery()
    )
    if len(field.path) > 1:
        return from_twin
    from_cloud = (
        sa.select(cast(cloud_properties.c.properties[field.path]))
        .where(
            (cloud_properties.c.app_id == devices.c.app_id)
            & (cloud_properties.c.device_id == devices.c.id)
        )
        .scalar_subquery()
    )
    return sa.func.coalesce(from_twin, from_cloud)


def _cast(sample: Value) -> Callable[[Any], sa.ColumnElement[Any]]:
    """Read the JSON value as the literal's type (a string never equals a number)."""
    if isinstance(sample, bool):
        return lambda e: e.as_boolean()
    if isinstance(sample, str):
        return lambda e: e.as_string()
    return lambda e: e.as_float()
