"""A parsed device filter (``aislehub.query.device_filter``) as a WHERE clause on ``devices``.

System fields are columns. A capability (``prop`` or ``component.prop``) is read from the
device twin's reported document, where a writable property acknowledged the Plug and Play way
holds ``{"value": v, "ac": …}`` (so ``value`` is read first); a root property may also be a
cloud property. Each is a correlated scalar subquery, so the clause drops into any query on
``devices``. The JSON paths are SQLAlchemy's, rendered for SQLite and PostgreSQL alike.

A device without the property does not match ``=``, ``!=`` or an ordering: SQL's NULL
comparison, and what IoT Central's filters do with a device that never reported. Nor does a
value of another JSON type than the literal's (``rssi > -50`` against ``"weak"``): the value
is read only when its JSON type fits, so SQLite never compares a string cast to 0 and
PostgreSQL never fails to cast one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

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
    reported = twins.c.reported
    from_twin = (
        sa.select(
            sa.func.coalesce(
                _typed(reported, (*field.path, "value"), sample),
                _typed(reported, field.path, sample),
            )
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
        sa.select(_typed(cloud_properties.c.properties, field.path, sample))
        .where(
            (cloud_properties.c.app_id == devices.c.app_id)
            & (cloud_properties.c.device_id == devices.c.id)
        )
        .scalar_subquery()
    )
    return sa.func.coalesce(from_twin, from_cloud)


def _typed(
    document: sa.ColumnElement[Any], path: tuple[str, ...], sample: Value
) -> sa.ColumnElement[Any]:
    """The JSON value at ``path`` as the literal's type, NULL when it has another type."""
    kinds: tuple[str, ...]
    if isinstance(sample, bool):
        kinds, value = _BOOLEAN, document[path].as_boolean()
    elif isinstance(sample, str):
        kinds, value = _STRING, document[path].as_string()
    else:
        kinds, value = _NUMBER, document[path].as_float()
    return sa.case((_JsonType(document, path).in_(kinds), value), else_=sa.null())


# The JSON type names of SQLite's json_type() and PostgreSQL's json_typeof(), together.
_BOOLEAN: tuple[str, ...] = ("true", "false", "boolean")
_STRING: tuple[str, ...] = ("text", "string")
_NUMBER: tuple[str, ...] = ("integer", "real", "number")


class _JsonType(FunctionElement[str]):
    """The JSON type name of the value at a path in a JSON column (NULL if absent)."""

    type = sa.String()
    inherit_cache = False  # the path parameter is made at compile time: never cache it

    def __init__(self, document: sa.ColumnElement[Any], path: tuple[str, ...]) -> None:
        super().__init__(document)
        self.path = path


@compiles(_JsonType)
def _json_type_sqlite(element: _JsonType, compiler: SQLCompiler, **kw: Any) -> str:
    (document,) = element.clauses
    path = sa.literal("$" + "".join(f'."{name}"' for name in element.path))
    return f"json_type({compiler.process(document, **kw)}, {compiler.process(path, **kw)})"


@compiles(_JsonType, "postgresql")
def _json_type_postgresql(element: _JsonType, compiler: SQLCompiler, **kw: Any) -> str:
    (document,) = element.clauses
    path = sa.literal("{" + ",".join(element.path) + "}")
    return (
        f"json_typeof({compiler.process(document, **kw)} "
        f"#> CAST({compiler.process(path, **kw)} AS TEXT[]))"
    )
