"""A parsed ``/api/query`` (:mod:`aislehub.query.iotc_query`) planned against its template.

The template decides what each name is (contract §4.2): telemetry, a reported or cloud
property, or a system field. A **telemetry query** becomes one statement over the
telemetry store's long tables, in its SQL dialect (DuckDB or PostgreSQL,
:mod:`aislehub.query.dialect`); a **property query** is answered from the metadata store
(:mod:`aislehub.query.iotc_properties`). Semantic faults (unknown field, telemetry mixed
with properties, AVG of a string, a literal of the wrong type) are 422s naming the
position; the text itself was checked by the parser.

The statement, for ``SELECT $id, AVG(temperature) FROM T WHERE WITHIN_WINDOW(P1D)``::

    WITH m AS (                                  -- one row per message of T's devices
        SELECT t.device_id, t.ts, t.value AS v0 FROM telemetry_num t
        WHERE t.app_id = $1 AND t.module_id IS NULL AND t.component IS NULL AND t.name = $3
          AND t.ts >= $4
          AND t.device_id IN (SELECT device_id FROM device_catalog
                              WHERE app_id = $1 AND template_id = $2))
    SELECT m.device_id AS c0, avg(m.v0) AS c1 FROM m
    GROUP BY m.device_id ORDER BY m.device_id LIMIT 10000

* One referenced telemetry field reads its table directly; several are pivoted by message
  (``GROUP BY device_id, log_offset`` over the union of the fields' rows), so a row holds
  the fields one message carried. Numeric kinds live in ``telemetry_num`` (DOUBLE), the
  others in ``telemetry_val`` (JSON), as the store writer files them.
* Time bounds of top-level ``WITHIN_WINDOW`` terms go into the scan, where DuckDB's zone
  maps skip row groups and PostgreSQL the days' partitions outside them; an aggregate
  without ``GROUP BY WINDOW`` and without ``WITHIN_WINDOW`` covers the last 30 days (§4.2).
* Aggregates group by the window start (aligned to multiples of the duration from
  2000-01-03, so weeks start on Monday; months counted from January 2000) and by the
  plain select items (``$id``, ``$provisioned``, ``$simulated``): ``SELECT $id,
  LAST(temperature)`` is the latest value per device. Without ``ORDER BY`` rows come
  newest first, then by ``$id``.
* Every value is a parameter (``$n`` in DuckDB, ``%s`` for psycopg) but the window's
  width, an integer from the parser written as a literal (the bucket expression repeats in
  SELECT, GROUP BY and ORDER BY, and must be the same text); identifiers never come from
  the query text (output columns are ``c0…``, keyed back to the select items in
  Python). ``LIMIT`` is an integer literal, as DuckDB's top-N needs a constant. NULLs sort
  last and text by code point on both engines, so both give the same rows in the same
  order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from aislehub.errors import ValidationFailed
from aislehub.models import EnumSchema, Primitive, Property, Schema
from aislehub.models.modelset import ResolvedModel
from aislehub.query.dialect import DIALECTS, Dialect
from aislehub.query.iotc_query import (
    MAX_TOP,
    Aggregate,
    AliasRef,
    Comparison,
    Condition,
    FieldRef,
    InList,
    Interval,
    Junction,
    Literal,
    Operand,
    Query,
    SelectItem,
    WithinWindow,
    window_start,
)

__all__ = [
    "DEFAULT_AGGREGATE_WINDOW",
    "MAX_PROPERTY_ROWS",
    "Column",
    "PropertyPlan",
    "QueryInvalid",
    "Resolved",
    "TelemetryPlan",
    "plan_query",
]

DEFAULT_AGGREGATE_WINDOW = timedelta(days=30)  # §4.2: an aggregate without GROUP BY WINDOW
MAX_PROPERTY_ROWS = 1_000  # §4.3
NUMERIC_KINDS = frozenset({"double", "float", "integer", "long"})  # stored in telemetry_num
_STRING_KINDS = frozenset({"string", "date", "dateTime", "time", "duration"})
_SYSTEM_TYPES = {"$id": "string", "$ts": "time", "$provisioned": "boolean", "$simulated": "boolean"}
_KIND_OF = {bool: "boolean", int: "number", float: "number", str: "string"}
_WEEK_ORIGIN = datetime(2000, 1, 3)  # a Monday: windows of days and weeks align to it
_NUMERIC_ONLY = frozenset({"AVG", "SUM", "MIN", "MAX"})
_SQL_AGG = {"AVG": "avg", "SUM": "sum", "MIN": "min", "MAX": "max", "COUNT": "count"}


class QueryInvalid(ValidationFailed):
    """A query that parses but does not fit its template (422)."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(f"Invalid query at position {position}: {message}.")
        self.position = position


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a name in the query is, per the template.

    ``role``: ``system``, ``telemetry``, ``property`` (reported) or ``cloud``;
    ``type``: what it compares with: ``number``, ``string``, ``boolean``, ``time``
    (``$ts``) or ``json`` (objects, maps, arrays, geopoints: not comparable);
    ``stored``: ``num`` or ``val`` for telemetry, the store table it lives in.
    """

    ref: FieldRef
    role: str
    type: str
    stored: str | None = None
    writable: bool = False


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    decode: str  # text | ts | number | count | json | boolean


@dataclass(frozen=True, slots=True)
class TelemetryPlan:
    sql: str
    params: tuple[Any, ...]
    columns: tuple[Column, ...]
    dialect: Dialect = DIALECTS["duckdb"]

    @property
    def json_sql(self) -> str:
        """The statement with each result row rendered by the store as its JSON object
        text: the API joins them into the body without building a Python object per value."""
        fields = [(c.key, f"c{n}", c.decode == "json") for n, c in enumerate(self.columns)]
        return self.dialect.json_rows(self.sql, fields)


@dataclass(frozen=True, slots=True)
class PropertyPlan:
    """A property query: one row per device of the template, at most 1,000."""

    query: Query
    template: str
    fields: Mapping[str, Resolved]  # by FieldRef name
    limit: int


Plan: TypeAlias = TelemetryPlan | PropertyPlan


def plan_query(
    query: Query,
    app_id: str,
    model: ResolvedModel,
    cloud: Mapping[str, Property],
    now: datetime,
    dialect: str = "duckdb",
) -> Plan:
    """Check ``query`` against the template (``model`` and its ``cloud`` properties) and
    plan it; ``now`` (aware) anchors ``WITHIN_WINDOW(duration)`` and the 30-day default;
    ``dialect``: the telemetry store's (``duckdb`` or ``postgres``)."""
    fields = _resolve_all(query, model, cloud)
    selected = [fields[_ref(i).name] for i in query.items]
    reads_properties = [f for f in selected if f.role in ("property", "cloud")]
    if not reads_properties:
        return _Telemetry(query, app_id, fields, now, DIALECTS[dialect]).plan()
    telemetry = next((f for f in fields.values() if f.role == "telemetry"), None)
    if telemetry is not None or "$ts" in fields:
        ref = telemetry.ref if telemetry else fields["$ts"].ref
        raise QueryInvalid(
            ref.position,
            f"{ref.name!r} is telemetry and {reads_properties[0].ref.name!r} a property; "
            "a query reads either telemetry or properties",
        )
    return _property_plan(query, fields)


# -- resolving names ------------------------------------------------------------------


def _ref(item: SelectItem) -> FieldRef:
    return item.expr.field if isinstance(item.expr, Aggregate) else item.expr


def _referenced(query: Query) -> list[FieldRef]:
    refs = [_ref(i) for i in query.items]
    refs += [o for o in _operands(query.where) if isinstance(o, FieldRef)]
    keys = {i.key for i in query.items}
    refs += [
        o.operand
        for o in query.order
        if isinstance(o.operand, FieldRef) and o.operand.name not in keys
    ]
    return refs


def _operands(cond: Condition | None) -> list[Operand]:
    match cond:
        case Comparison(operand=operand) | InList(operand=operand):
            return [operand]
        case Junction(terms=terms):
            return [o for t in terms for o in _operands(t)]
    return []


def _resolve_all(
    query: Query, model: ResolvedModel, cloud: Mapping[str, Property]
) -> dict[str, Resolved]:
    found: dict[str, Resolved] = {}
    for ref in _referenced(query):
        if ref.name not in found:
            found[ref.name] = _resolve(ref, model, cloud, query.template)
    return found


def _resolve(
    ref: FieldRef, model: ResolvedModel, cloud: Mapping[str, Property], template: str
) -> Resolved:
    if ref.system:
        return Resolved(ref, "system", _SYSTEM_TYPES[ref.name])
    component, name = ref.component, ref.capability
    if component is not None and model.interface(component) is None:
        raise QueryInvalid(ref.position, f"template {template} has no component {component!r}")
    telemetry = model.telemetry(component, name)
    if telemetry is not None:
        kind = _kind(telemetry.schema)
        return Resolved(ref, "telemetry", _type(telemetry.schema), _stored(kind))
    prop = model.property(component, name)
    if prop is not None:
        return Resolved(ref, "property", _type(prop.schema), writable=prop.writable)
    if component is None and name in cloud:
        return Resolved(ref, "cloud", _type(cloud[name].schema))
    where = f"component {component!r} of " if component else ""
    raise QueryInvalid(
        ref.position, f"{where}template {template} has no telemetry or property {name!r}"
    )


def _kind(schema: Schema) -> str:
    return schema.name if isinstance(schema, Primitive) else type(schema).__name__


def _stored(kind: str) -> str:
    return "num" if kind in NUMERIC_KINDS else "val"


def _type(schema: Schema) -> str:
    if isinstance(schema, Primitive):
        if schema.name in NUMERIC_KINDS:
            return "number"
        if schema.name == "boolean":
            return "boolean"
        return "string" if schema.name in _STRING_KINDS else "json"
    if isinstance(schema, EnumSchema):
        return "number" if schema.value_schema == "integer" else "string"
    return "json"


def check_literal(resolved: Resolved, value: Literal, position: int) -> Any:
    """``value`` as the parameter to compare ``resolved`` with, or a 422."""
    wanted = resolved.type
    if wanted == "time" and isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
            return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    elif _KIND_OF.get(type(value)) == wanted:
        return value
    name = resolved.ref.name
    if wanted == "json":
        raise QueryInvalid(position, f"{name} is an object, map or array and cannot be compared")
    shown = {"time": "an ISO 8601 time in quotes", "number": "a number"}.get(wanted)
    raise QueryInvalid(
        position, f"{name} compares with {shown or f'a {wanted}'}, not {_show(value)}"
    )


def _show(value: Literal) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


# -- telemetry queries ----------------------------------------------------------------


@dataclass
class _Telemetry:
    query: Query
    app_id: str
    fields: dict[str, Resolved]
    now: datetime
    dialect: Dialect
    params: list[Any] = field(default_factory=list)
    slots: dict[str, str] = field(default_factory=dict)  # telemetry name -> m column
    outputs: list[SelectItem] = field(default_factory=list)  # c0, c1, … in order
    exprs: list[str] = field(default_factory=list)  # their SQL, before formatting
    catalog_joined: bool = False

    def param(self, value: Any) -> str:
        self.params.append(value)
        return self.dialect.param(len(self.params))

    # -- the plan --------------------------------------------------------------------
    def plan(self) -> TelemetryPlan:
        q = self.query
        self._check_where(q.where)
        for item in q.items:
            if isinstance(item.expr, Aggregate):
                self._check_aggregate(item.expr, self.fields[item.expr.field.name])
        telemetry = [f for f in self.fields.values() if f.role == "telemetry"]
        if not telemetry:
            raise QueryInvalid(
                _ref(q.items[0]).position,
                "a telemetry query selects or filters on at least one telemetry value",
            )
        for i, f in enumerate(telemetry):
            self.slots[f.ref.name] = f"m.v{i}"
        self.app = self.param(self.app_id)
        self.template = self.param(q.template)
        if q.aggregated:
            select, columns, group, default_order = self._aggregate()
        else:
            select, columns, group, default_order = self._raw()
        where = self._condition(q.where) if q.where is not None else None
        order = [self._order_item(o.operand, o.descending) for o in q.order]
        order += [o for o in default_order if o not in order]
        formatted = [n for n, c in enumerate(columns) if c.decode == "ts"]
        keys = order if formatted else []
        inner = select + [f"{key.expr} AS o{k}" for k, key in enumerate(keys)]
        sql = f"WITH m AS ({self._source(telemetry)})\nSELECT {', '.join(inner)} FROM m"
        if self.catalog_joined:
            sql += f" JOIN device_catalog d ON d.app_id = {self.app} AND d.device_id = m.device_id"
        if where:
            sql += f"\nWHERE {where}"
        if group:
            sql += f"\nGROUP BY {', '.join(group)}"
        if order:
            sql += f"\nORDER BY {', '.join(self._sort(o) for o in order)}"
        sql += f"\nLIMIT {int(q.top or MAX_TOP)}"
        if formatted:
            sql = self._format_times(sql, len(columns), formatted, order)
        sql, params = self.dialect.finish(sql, self.params)
        return TelemetryPlan(sql, tuple(params), tuple(columns), self.dialect)

    def _sort(self, key: _SortKey, expr: str | None = None) -> str:
        return self.dialect.order(expr or key.expr, key.descending, key.text)

    def _raw(self) -> tuple[list[str], list[Column], list[str], list[_SortKey]]:
        items = list(self.query.items)
        chosen = {_ref(i).name for i in items}
        implicit = [SelectItem(FieldRef(n)) for n in ("$id", "$ts") if n not in chosen]
        self.outputs = [*implicit, *items]
        select, columns = [], []
        for n, item in enumerate(self.outputs):
            ref = _ref(item)
            decode = self._decode(self.fields.get(ref.name), ref)
            select.append(self._output(n, self._value(ref), decode))
            columns.append(Column(item.key, decode))
        return select, columns, [], [_SortKey("m.ts", True), _SortKey("m.device_id", text=True)]

    def _aggregate(self) -> tuple[list[str], list[Column], list[str], list[_SortKey]]:
        q = self.query
        bucket = self._window_bucket("m.ts") if q.window else None
        items = list(q.items)
        if bucket and not any(_ref(i).name == "$ts" and i.expr == _ref(i) for i in items):
            items.insert(0, SelectItem(FieldRef("$ts")))
        self.outputs = items
        select, columns, group, texts = [], [], [], []
        for n, item in enumerate(items):
            expr, decode = self._aggregate_item(item, bucket)
            select.append(self._output(n, expr, decode))
            columns.append(Column(item.key, decode))
            if not isinstance(item.expr, Aggregate) and expr not in group:
                group.append(expr)
                texts.append(decode == "text")
        default = [_SortKey(bucket, True)] if bucket else []
        default += [_SortKey(g, text=t) for g, t in zip(group, texts, strict=True) if g != bucket]
        return select, columns, group, default

    def _output(self, n: int, expr: str, decode: str) -> str:
        self.exprs.append(expr)
        return f"{expr} AS c{n}"

    def _format_times(
        self, sql: str, count: int, formatted: list[int], order: list[_SortKey]
    ) -> str:
        """Timestamps formatted by the store (ISO 8601, ms, ``Z``), cheaper than building
        Python datetimes to format them, and only for the rows kept: an outer query over
        the limited result, sorted again by the sort keys the inner one carries."""
        outer = [
            f"{self.dialect.iso_ms(f'c{n}')} AS c{n}" if n in formatted else f"c{n}"
            for n in range(count)
        ]
        resort = [self._sort(key, f"o{k}") for k, key in enumerate(order)]
        return f"SELECT {', '.join(outer)} FROM (\n{sql}\n) AS r ORDER BY {', '.join(resort)}"

    def _aggregate_item(self, item: SelectItem, bucket: str | None) -> tuple[str, str]:
        ref = _ref(item)
        if isinstance(item.expr, Aggregate):
            return self._aggregate_expr(item.expr, self.fields[ref.name])
        if ref.name == "$ts":
            if bucket is None:
                raise QueryInvalid(
                    ref.position, "$ts is the window start: aggregate with GROUP BY WINDOW(…)"
                )
            return bucket, "ts"
        resolved = self.fields[ref.name]
        if resolved.role == "telemetry":
            raise QueryInvalid(
                ref.position,
                f"{ref.name} must be inside an aggregate (AVG, MIN, LAST…) when the query "
                "aggregates",
            )
        return self._value(ref), self._decode(resolved, ref)

    @staticmethod
    def _check_aggregate(agg: Aggregate, resolved: Resolved) -> None:
        ref = agg.field
        if resolved.role != "telemetry":
            raise QueryInvalid(ref.position, f"{agg.function} aggregates telemetry, not {ref.name}")
        if agg.function in _NUMERIC_ONLY and resolved.type != "number":
            raise QueryInvalid(
                ref.position,
                f"{agg.function} needs a numeric telemetry value; {ref.name} is not a number",
            )

    def _aggregate_expr(self, agg: Aggregate, resolved: Resolved) -> tuple[str, str]:
        ref = agg.field
        column = self.slots[ref.name]
        if agg.function == "COUNT":
            return f"count({column})", "count"
        if agg.function in ("FIRST", "LAST"):
            picked = self.dialect.first(column, "m.ts", last=agg.function == "LAST")
            return picked, self._decode(resolved, ref)
        if resolved.stored == "val":  # an integer enum: JSON numbers
            column = self.dialect.json_as(column, "DOUBLE")
        return f"{_SQL_AGG[agg.function]}({column})", "number"

    def _window_bucket(self, ts: str) -> str:
        window = self.query.window
        assert window is not None
        if window.months and window.micros:
            raise QueryInvalid(
                0, f"WINDOW({window}) mixes months or years with days or hours; use one unit"
            )
        # Literals (integers from the parser), so the bucket is the same text wherever it
        # repeats: SELECT, GROUP BY, ORDER BY.
        if window.months:
            return self.dialect.month_bucket(window.months, ts)
        return self.dialect.bucket(self.dialect.interval(window.fixed), ts, _WEEK_ORIGIN)

    # -- the message rows ------------------------------------------------------------
    def _source(self, telemetry: list[Resolved]) -> str:
        start, end = self._time_bounds()
        bounds = ""
        if start is not None:
            bounds += f" AND t.ts >= {self.param(self.dialect.timestamp(start))}"
        if end is not None:
            bounds += f" AND t.ts < {self.param(self.dialect.timestamp(end))}"
        devices = (
            " AND t.device_id IN (SELECT device_id FROM device_catalog"
            f" WHERE app_id = {self.app} AND template_id = {self.template})"
        )
        scope = f"t.app_id = {self.app} AND t.module_id IS NULL{bounds}{devices}"
        if len(telemetry) == 1:
            f = telemetry[0]
            return (
                f"SELECT t.device_id, t.ts, t.value AS v0 FROM telemetry_{f.stored} t "
                f"WHERE {scope} AND {self._field_match(f)}"
            )
        parts = []
        json_null = f"CAST(NULL AS {self.dialect.json_type})"
        for stored in ("num", "val"):
            mine = [f for f in telemetry if f.stored == stored]
            if mine:
                match = " OR ".join(f"({self._field_match(f)})" for f in mine)
                num, val = ("t.value", json_null) if stored == "num" else ("NULL", "t.value")
                parts.append(
                    f"SELECT t.device_id, t.log_offset, t.ts, t.component, t.name, "
                    f"{num} AS num, {val} AS val FROM telemetry_{stored} t "
                    f"WHERE {scope} AND ({match})"
                )
        pivots = [
            (
                f"max(t.num) FILTER (WHERE {self._field_match(f)})"
                if f.stored == "num"
                else self.dialect.any_value("t.val", self._field_match(f))
            )
            + f" AS v{i}"
            for i, f in enumerate(telemetry)
        ]
        return (
            f"SELECT t.device_id, min(t.ts) AS ts, {', '.join(pivots)} "
            f"FROM ({' UNION ALL '.join(parts)}) t GROUP BY t.device_id, t.log_offset"
        )

    def _field_match(self, f: Resolved) -> str:
        component = f.ref.component
        where = (
            "t.component IS NULL" if component is None else f"t.component = {self.param(component)}"
        )
        return f"{where} AND t.name = {self.param(f.ref.capability)}"

    def _time_bounds(self) -> tuple[datetime | None, datetime | None]:
        """The intersection of the top-level WITHIN_WINDOW terms (pushed into the scan)."""
        where = self.query.where
        terms = where.terms if isinstance(where, Junction) and where.op == "AND" else (where,)
        start: datetime | None = None
        end: datetime | None = None
        for term in terms:
            if isinstance(term, WithinWindow):
                a, b = self._window(term)
                start = a if start is None else max(start, a)
                end = b if end is None or b is None else min(end, b)
        if start is None and self.query.aggregated and self.query.window is None:
            start = self.now - DEFAULT_AGGREGATE_WINDOW
        return start, end

    def _window(self, term: WithinWindow) -> tuple[datetime, datetime | None]:
        if isinstance(term.window, Interval):
            return term.window.start, term.window.end
        return window_start(self.now, term.window), None

    # -- WHERE and ORDER BY --------------------------------------------------------------
    def _check_where(self, cond: Condition | None) -> None:
        for operand in _operands(cond):
            item = self._alias_item(operand)
            if item is not None and isinstance(item.expr, Aggregate):
                raise QueryInvalid(
                    operand.position,
                    f"WHERE filters messages before aggregation; {item.key!r} is an aggregate",
                )
            ref = _ref(item) if item else operand
            assert isinstance(ref, FieldRef)
            if self.fields[ref.name].role in ("property", "cloud"):
                raise QueryInvalid(
                    operand.position,
                    f"{ref.name} is a property; a telemetry query filters on telemetry, "
                    "$id, $ts, $provisioned and $simulated",
                )

    def _alias_item(self, operand: Operand) -> SelectItem | None:
        return self.query.item(operand.alias) if isinstance(operand, AliasRef) else None

    def _condition(self, cond: Condition) -> str:
        match cond:
            case WithinWindow() as term:
                start, end = self._window(term)
                text = f"m.ts >= {self.param(self.dialect.timestamp(start))}"
                if end is None:
                    return text
                return f"({text} AND m.ts < {self.param(self.dialect.timestamp(end))})"
            case Comparison(operand=operand, op=op, value=value):
                resolved = self._operand(operand)
                param = self.param(self._literal(resolved, value, operand.position))
                return f"{self._typed(resolved.ref, resolved)} {op} {param}"
            case InList(operand=operand, values=values):
                resolved = self._operand(operand)
                params = [self.param(self._literal(resolved, v, operand.position)) for v in values]
                return f"{self._typed(resolved.ref, resolved)} IN ({', '.join(params)})"
            case Junction(op=op, terms=terms):
                return "(" + f" {op} ".join(self._condition(t) for t in terms) + ")"
        raise AssertionError(f"unknown condition {cond!r}")  # pragma: no cover

    def _literal(self, resolved: Resolved, value: Literal, position: int) -> Any:
        checked = check_literal(resolved, value, position)
        return self.dialect.timestamp(checked) if isinstance(checked, datetime) else checked

    def _operand(self, operand: Operand) -> Resolved:
        item = self._alias_item(operand)
        ref = _ref(item) if item else operand
        assert isinstance(ref, FieldRef)
        return self.fields[ref.name]

    def _order_item(self, operand: Operand, descending: bool) -> _SortKey:
        item = self._alias_item(operand)
        if item is None and isinstance(operand, FieldRef):
            item = next((i for i in self.query.items if i.key == operand.name), None)
        if self.query.aggregated:
            n = self._output_index(item, operand)
            if n is None:
                raise QueryInvalid(
                    operand.position,
                    f"an aggregating query orders by its select items; {_name(operand)!r} "
                    "is not one",
                )
            text = _ref(self.outputs[n]).name == "$id" and self.exprs[n] == "m.device_id"
            return _SortKey(self.exprs[n], descending, text)
        ref = _ref(item) if item else operand
        assert isinstance(ref, FieldRef)
        resolved = self.fields.get(ref.name)
        return _SortKey(self._typed(ref, resolved), descending, _is_text(ref, resolved))

    def _output_index(self, item: SelectItem | None, operand: Operand) -> int | None:
        for n, out in enumerate(self.outputs):
            if item is not None and out.key == item.key:
                return n
            if item is None and out.expr == operand:  # $ts: the window start
                return n
        return None

    # -- column expressions ------------------------------------------------------------
    def _value(self, ref: FieldRef) -> str:
        if ref.name == "$id":
            return "m.device_id"
        if ref.name == "$ts":
            return "m.ts"
        if ref.name in ("$provisioned", "$simulated"):
            self.catalog_joined = True
            return f"d.{ref.name[1:]}"
        return self.slots[ref.name]

    def _typed(self, ref: FieldRef, resolved: Resolved | None) -> str:
        """The value as SQL compares it: JSON strings unquoted, booleans and enums cast."""
        column = self._value(ref)
        if resolved is None or resolved.stored != "val":
            return column
        if resolved.type == "string":
            return self.dialect.json_string(column)
        if resolved.type == "boolean":
            return self.dialect.json_as(column, "BOOLEAN")
        if resolved.type == "number":
            return self.dialect.json_as(column, "DOUBLE")
        return column

    @staticmethod
    def _decode(resolved: Resolved | None, ref: FieldRef) -> str:
        if ref.name == "$ts":
            return "ts"
        if ref.name in ("$provisioned", "$simulated"):
            return "boolean"
        if resolved is None or resolved.role == "system":
            return "text"
        return "number" if resolved.stored == "num" else "json"


@dataclass(frozen=True, slots=True)
class _SortKey:
    """An ORDER BY item: its expression, direction, and whether it sorts as text."""

    expr: str
    descending: bool = False
    text: bool = False


def _is_text(ref: FieldRef, resolved: Resolved | None) -> bool:
    if ref.name == "$id":
        return True
    return resolved is not None and resolved.stored == "val" and resolved.type == "string"


def _name(operand: Operand) -> str:
    return operand.alias if isinstance(operand, AliasRef) else operand.name


# -- property queries -----------------------------------------------------------------


def _property_plan(query: Query, fields: Mapping[str, Resolved]) -> PropertyPlan:
    for item in query.items:
        if isinstance(item.expr, Aggregate):
            raise QueryInvalid(
                item.position, f"{item.expr.function} aggregates telemetry, not properties"
            )
    if query.window is not None:
        raise QueryInvalid(0, "GROUP BY WINDOW groups telemetry; this query reads properties")
    if _has_window(query.where):
        raise QueryInvalid(0, "WITHIN_WINDOW applies to telemetry; this query reads properties")
    _check_property_literals(query.where, query, fields)
    if query.top is not None and query.top > MAX_PROPERTY_ROWS:
        raise QueryInvalid(
            0, f"a property query returns at most {MAX_PROPERTY_ROWS:,} rows (TOP {query.top})"
        )
    return PropertyPlan(query, query.template, fields, query.top or MAX_PROPERTY_ROWS)


def _has_window(cond: Condition | None) -> bool:
    match cond:
        case WithinWindow():
            return True
        case Junction(terms=terms):
            return any(_has_window(t) for t in terms)
    return False


def _check_property_literals(
    cond: Condition | None, query: Query, fields: Mapping[str, Resolved]
) -> None:
    match cond:
        case Comparison(operand=operand, value=value):
            check_literal(_property_operand(operand, query, fields), value, operand.position)
        case InList(operand=operand, values=values):
            for value in values:
                check_literal(_property_operand(operand, query, fields), value, operand.position)
        case Junction(terms=terms):
            for term in terms:
                _check_property_literals(term, query, fields)


def _property_operand(operand: Operand, query: Query, fields: Mapping[str, Resolved]) -> Resolved:
    ref = _ref(query.item(operand.alias)) if isinstance(operand, AliasRef) else operand
    return fields[ref.name]
