"""IoT Central's query language (``POST /api/query``, contract §4), parsed into a typed tree.

::

    query      = "SELECT" [ "TOP" int ] item { "," item } "FROM" templateId
                 [ "WHERE" condition ] [ "GROUP" "BY" "WINDOW" "(" duration ")" ]
                 [ "ORDER" "BY" order { "," order } ]
    item       = ( field | aggFn "(" field ")" ) [ "AS" alias ]
    aggFn      = "SUM" | "MAX" | "MIN" | "COUNT" | "AVG" | "FIRST" | "LAST"
    field      = "$id" | "$ts" | "$provisioned" | "$simulated" | name [ "." name ]
    condition  = conjunct { "OR" conjunct }
    conjunct   = term { "AND" term }
    term       = "WITHIN_WINDOW" "(" ( duration | "'" interval "'" ) ")" | "(" condition ")"
               | operand cmpOp literal | operand "IN" "[" literal { "," literal } "]"
    operand    = field | alias
    order      = ( field | alias ) [ "ASC" | "DESC" ]
    literal    = number | 'string' | true | false

Keywords and system fields are case-insensitive; ``AND`` binds tighter than ``OR``;
parentheses are ours (the docs show none, §4.1). The template id is unquoted. Limits
(§4.3) are checked here with the position that breaks them: 350 characters, 15 select
items, no ``*``, 10 operators in ``WHERE`` (each AND, OR, comparison and IN counts), and
``TOP`` at most 10,000 (the telemetry row cap). Everything that needs the template (does
the field exist, is it telemetry or a property, can it be averaged) is the planner's
(:mod:`aislehub.query.iotc_sql`), a 422 rather than this module's 400.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

from aislehub.errors import BadRequest
from aislehub.query.lexer import FilterError, Token, string_value, tokenize

__all__ = [
    "AGGREGATES",
    "MAX_LENGTH",
    "MAX_OPERATORS",
    "MAX_SELECT",
    "MAX_TOP",
    "Aggregate",
    "AliasRef",
    "Comparison",
    "Duration",
    "FieldRef",
    "InList",
    "Interval",
    "Junction",
    "OrderItem",
    "Query",
    "QueryError",
    "SelectItem",
    "WithinWindow",
    "format_query",
    "parse_duration",
    "parse_query",
]

# Limits of IoT Central's query API (contract §4.3, S5).
MAX_LENGTH = 350
MAX_SELECT = 15
MAX_OPERATORS = 10
MAX_TOP = 10_000  # rows of a telemetry query; property queries stop at 1,000 (planner)
MAX_NESTING = 10  # parentheses; ten operators cannot use more

AGGREGATES = ("SUM", "MAX", "MIN", "COUNT", "AVG", "FIRST", "LAST")
SYSTEM_FIELDS = ("$id", "$ts", "$provisioned", "$simulated")
_SYSTEM_BY_LOWER = {name.lower(): name for name in SYSTEM_FIELDS}
_RESERVED = frozenset(
    {"SELECT", "TOP", "FROM", "WHERE", "AND", "OR", "IN", "AS", "GROUP", "BY", "ORDER"}
    | {"ASC", "DESC", "TRUE", "FALSE", "WITHIN_WINDOW"}
)
_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?")  # a DTDL name (v2 §name)
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_TEMPLATE = re.compile(r"(?i:dtmi|urn):[^\s]+")
_OPS = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
# PnYnMnWnDTnHnMnS, each part optional, seconds may have a fraction (ISO 8601-1 §5.5.2).
_DURATION = re.compile(
    r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d{1,6})?)S)?)?",
    re.IGNORECASE,
)
_MAX_DURATION_DAYS = 100 * 366  # far past any retention; keeps datetime arithmetic in range

Literal: TypeAlias = str | int | float | bool


class QueryError(BadRequest):
    """A query that does not parse or breaks a limit; ``position`` is 1-based."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(f"Invalid query at position {position}: {message}.")
        self.position = position


# -- the tree ---------------------------------------------------------------------------
# Positions ride along for the planner's messages but take no part in equality, so a
# query printed by format_query and parsed again compares equal to the original.


@dataclass(frozen=True, slots=True)
class FieldRef:
    """``$id`` (system, canonical spelling) or ``temperature`` / ``thermostat1.temperature``."""

    name: str
    position: int = field(default=0, compare=False, repr=False)

    @property
    def system(self) -> bool:
        return self.name.startswith("$")

    @property
    def component(self) -> str | None:
        return self.name.split(".")[0] if "." in self.name else None

    @property
    def capability(self) -> str:
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True, slots=True)
class Aggregate:
    function: str  # upper case, one of AGGREGATES
    field: FieldRef

    @property
    def key(self) -> str:
        """The output key IoT Central gives it: ``avg_temperature`` (§4.2)."""
        return f"{self.function.lower()}_{self.field.name}"


@dataclass(frozen=True, slots=True)
class SelectItem:
    expr: FieldRef | Aggregate
    alias: str | None = None
    position: int = field(default=0, compare=False, repr=False)

    @property
    def key(self) -> str:
        if self.alias is not None:
            return self.alias
        return self.expr.key if isinstance(self.expr, Aggregate) else self.expr.name


@dataclass(frozen=True, slots=True)
class AliasRef:
    """A select item's alias used in WHERE or ORDER BY."""

    alias: str
    position: int = field(default=0, compare=False, repr=False)


Operand: TypeAlias = FieldRef | AliasRef


@dataclass(frozen=True, slots=True)
class Duration:
    """An ISO 8601 duration: calendar months and a fixed part (days are 24 h in UTC)."""

    months: int = 0
    micros: int = 0

    @property
    def fixed(self) -> timedelta:
        return timedelta(microseconds=self.micros)

    def __str__(self) -> str:
        years, months = divmod(self.months, 12)
        days, rest = divmod(self.micros, 86_400_000_000)
        hours, rest = divmod(rest, 3_600_000_000)
        minutes, rest = divmod(rest, 60_000_000)
        seconds, micros = divmod(rest, 1_000_000)
        date = "".join(f"{n}{u}" for n, u in ((years, "Y"), (months, "M"), (days, "D")) if n)
        sec = f"{seconds}.{micros:06d}".rstrip("0") if micros else str(seconds)
        time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M")) if n)
        time += f"{sec}S" if seconds or micros else ""
        return "P" + date + (f"T{time}" if time else "")


@dataclass(frozen=True, slots=True)
class Interval:
    """An absolute ``start/end`` range, aware UTC; ``start <= $ts < end``."""

    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"{_iso(self.start)}/{_iso(self.end)}"


@dataclass(frozen=True, slots=True)
class WithinWindow:
    window: Duration | Interval


@dataclass(frozen=True, slots=True)
class Comparison:
    operand: Operand
    op: str  # = != < <= > >=
    value: Literal


@dataclass(frozen=True, slots=True)
class InList:
    operand: Operand
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class Junction:
    op: str  # AND | OR
    terms: tuple[Condition, ...]


Condition: TypeAlias = WithinWindow | Comparison | InList | Junction


@dataclass(frozen=True, slots=True)
class OrderItem:
    operand: Operand
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    items: tuple[SelectItem, ...]
    template: str
    top: int | None = None
    where: Condition | None = None
    window: Duration | None = None  # GROUP BY WINDOW(…)
    order: tuple[OrderItem, ...] = ()

    def item(self, alias: str) -> SelectItem:
        return next(i for i in self.items if i.alias == alias)

    @property
    def aggregated(self) -> bool:
        return self.window is not None or any(isinstance(i.expr, Aggregate) for i in self.items)


def parse_query(text: str) -> Query:
    """The query's tree, or :class:`QueryError` (a 400) naming the position and the fault."""
    if len(text) > MAX_LENGTH:
        raise QueryError(MAX_LENGTH + 1, f"a query is at most {MAX_LENGTH} characters")
    try:
        tokens = tokenize(text)
    except FilterError as exc:
        raise QueryError(exc.position, exc.message.split(": ", 1)[1].rstrip(".")) from None
    return _Parser(tokens).query()


def parse_duration(text: str) -> Duration | None:
    """An ISO 8601 duration such as ``PT10M``, ``P2DT12H`` or ``P1W``; None if it is not one."""
    match = _DURATION.fullmatch(text)
    if match is None or text.upper() in ("P", "PT") or text.upper().endswith("T"):
        return None
    y, mo, w, d, h, mi = (int(g or 0) for g in match.groups()[:6])
    seconds = match.group(7) or "0"
    whole, _, fraction = seconds.partition(".")
    micros = int(whole) * 1_000_000 + int(fraction.ljust(6, "0") or 0)
    micros += (((w * 7 + d) * 24 + h) * 60 + mi) * 60_000_000
    months = y * 12 + mo
    if months * 31 + micros // 86_400_000_000 > _MAX_DURATION_DAYS:
        return None
    return Duration(months, micros)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.at = 0
        self.operators = 0
        self.aliases: dict[str, SelectItem] = {}

    # -- token helpers -----------------------------------------------------------------
    @property
    def token(self) -> Token:
        return self.tokens[self.at]

    def advance(self) -> Token:
        token = self.tokens[self.at]
        self.at = min(self.at + 1, len(self.tokens) - 1)
        return token

    def error(self, message: str, token: Token | None = None) -> QueryError:
        return QueryError((token or self.token).position, message)

    def expect(self, text: str, what: str | None = None) -> Token:
        token = self.token
        matches = token.is_word(text) if text[0].isalpha() else token.text == text
        if not matches:
            raise self.error(f"expected {what or text}, found {_describe(token)}")
        return self.advance()

    def count_operator(self, token: Token) -> None:
        self.operators += 1
        if self.operators > MAX_OPERATORS:
            raise self.error(
                f"WHERE has at most {MAX_OPERATORS} operators (AND, OR, comparisons, IN); "
                f"{token.text!r} is the {self.operators}th",
                token,
            )

    # -- clauses -----------------------------------------------------------------------
    def query(self) -> Query:
        self.expect("SELECT")
        top = self.top()
        items = self.select_list()
        self.expect("FROM", "FROM after the select list")
        template = self.template()
        where = window = None
        if self.token.is_word("WHERE"):
            self.advance()
            where = self.condition(0)
        if self.token.is_word("GROUP"):
            self.advance()
            self.expect("BY", "BY after GROUP")
            window = self.group_window()
        order: tuple[OrderItem, ...] = ()
        if self.token.is_word("ORDER"):
            self.advance()
            self.expect("BY", "BY after ORDER")
            order = self.order_list()
        if self.token.kind != "end":
            raise self.error(f"unexpected {_describe(self.token)}; the query should end here")
        return Query(items, template, top, where, window, order)

    def top(self) -> int | None:
        if not self.token.is_word("TOP"):
            return None
        self.advance()
        token = self.advance()
        if token.kind != "number" or not token.text.isdigit() or int(token.text) < 1:
            raise self.error(f"TOP takes a positive whole number, not {_describe(token)}", token)
        if int(token.text) > MAX_TOP:
            raise self.error(f"TOP is at most {MAX_TOP:,} (the row limit)", token)
        return int(token.text)

    def select_list(self) -> tuple[SelectItem, ...]:
        items = [self.select_item()]
        while self.token.text == "," and self.token.kind == "punct":
            self.advance()
            if len(items) == MAX_SELECT:
                raise self.error(f"SELECT takes at most {MAX_SELECT} items")
            items.append(self.select_item())
        keys: set[str] = set()
        for item in items:
            if item.key in keys:
                message = f"two select items are named {item.key!r}; rename one with AS"
                raise QueryError(item.position, message)
            keys.add(item.key)
        return tuple(items)

    def select_item(self) -> SelectItem:
        token = self.token
        if token.text == "*":
            raise self.error("SELECT * is not supported; name the fields (at most 15)")
        expr: FieldRef | Aggregate
        if token.kind == "word" and self.tokens[self.at + 1].text == "(":
            function = token.text.upper()
            if function not in AGGREGATES:
                raise self.error(
                    f"unknown function {token.text!r}; use one of {', '.join(AGGREGATES)}", token
                )
            self.advance()
            self.advance()
            if self.token.text == "*":
                raise self.error(f"{function} takes a field, not '*'")
            expr = Aggregate(function, self.field())
            self.expect(")", f"')' to close {function}(")
        else:
            expr = self.field()
        alias = None
        if self.token.is_word("AS"):
            self.advance()
            alias = self.alias()
        item = SelectItem(expr, alias, token.position)
        if alias is not None:
            self.aliases[alias] = item
        return item

    def alias(self) -> str:
        token = self.advance()
        if token.kind != "word" or not _ALIAS.fullmatch(token.text) or _reserved(token):
            raise self.error(
                f"an alias is a name of letters, digits and '_' (at most 64), not "
                f"{_describe(token)}",
                token,
            )
        if token.text in self.aliases:
            raise self.error(f"the alias {token.text!r} is used twice", token)
        return token.text

    def template(self) -> str:
        token = self.advance()
        if token.kind != "word" or not _TEMPLATE.fullmatch(token.text):
            raise self.error(
                f"FROM takes a device template id such as dtmi:contoso:Thermostat;1, "
                f"not {_describe(token)}",
                token,
            )
        return token.text

    def field(self) -> FieldRef:
        token = self.advance()
        if token.kind != "word" or _reserved(token):
            raise self.error(f"expected a field name, found {_describe(token)}", token)
        if token.text.startswith("$"):
            name = _SYSTEM_BY_LOWER.get(token.text.lower())
            if name is None:
                known = ", ".join(SYSTEM_FIELDS)
                raise self.error(f"unknown system field {token.text!r}; use {known}", token)
            return FieldRef(name, token.position)
        parts = token.text.split(".")
        if len(parts) > 2 or not all(_NAME.fullmatch(p) for p in parts):
            raise self.error(
                f"{token.text!r} is not a field name or component.field (DTDL names: "
                "letters, digits and '_')",
                token,
            )
        return FieldRef(token.text, token.position)

    def operand(self) -> Operand:
        token = self.token
        if token.kind == "word" and token.text in self.aliases:
            self.advance()
            return AliasRef(token.text, token.position)
        return self.field()

    # -- WHERE -------------------------------------------------------------------------
    def condition(self, depth: int) -> Condition:
        terms = [self.conjunct(depth)]
        while self.token.is_word("OR"):
            self.count_operator(self.advance())
            terms.append(self.conjunct(depth))
        return terms[0] if len(terms) == 1 else Junction("OR", tuple(terms))

    def conjunct(self, depth: int) -> Condition:
        terms = [self.term(depth)]
        while self.token.is_word("AND"):
            self.count_operator(self.advance())
            terms.append(self.term(depth))
        return terms[0] if len(terms) == 1 else Junction("AND", tuple(terms))

    def term(self, depth: int) -> Condition:
        token = self.token
        if token.text == "(" and token.kind == "punct":
            if depth >= MAX_NESTING:
                raise self.error(f"parentheses nest at most {MAX_NESTING} deep")
            self.advance()
            inner = self.condition(depth + 1)
            self.expect(")", "')' or AND/OR")
            return inner
        if token.is_word("WITHIN_WINDOW"):
            return self.within_window()
        operand = self.operand()
        op = self.advance()
        if op.is_word("IN"):
            self.count_operator(op)
            return InList(operand, self.literal_list())
        if op.kind != "op":
            raise self.error(
                f"expected a comparison (=, !=, <>, <, <=, >, >=) or IN, found {_describe(op)}",
                op,
            )
        self.count_operator(op)
        value_token = self.token
        value = self.literal()
        if isinstance(value, bool) and _OPS[op.text] not in ("=", "!="):
            raise self.error(f"{op.text} does not compare booleans", value_token)
        return Comparison(operand, _OPS[op.text], value)

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect("[", "'[' after IN")
        values = [self.literal()]
        while self.token.text == "," and self.token.kind == "punct":
            self.advance()
            values.append(self.literal())
        self.expect("]", "',' or ']'")
        return tuple(values)

    def literal(self) -> Literal:
        token = self.advance()
        if token.kind == "string":
            return string_value(token)
        if token.kind == "number":
            if re.fullmatch(r"-?\d+", token.text):
                return int(token.text)
            number = float(token.text)
            if not math.isfinite(number):
                raise self.error(f"the number {token.text} is out of range", token)
            return number
        if token.is_word("TRUE", "FALSE"):
            return token.text.upper() == "TRUE"
        raise self.error(
            f"expected a value (a number, a 'quoted string', true or false), found "
            f"{_describe(token)}",
            token,
        )

    def within_window(self) -> WithinWindow:
        self.advance()
        self.expect("(", "'(' after WITHIN_WINDOW")
        token = self.advance()
        window: Duration | Interval
        if token.kind == "string":
            window = self._interval(token)
        else:
            window = self._duration(token, "WITHIN_WINDOW")
        self.expect(")", "')' to close WITHIN_WINDOW(")
        return WithinWindow(window)

    def _interval(self, token: Token) -> Interval:
        text = string_value(token)
        first, slash, second = text.partition("/")
        if not slash:
            raise self.error(
                "an interval is 'start/end' in ISO 8601, e.g. "
                "'2021-06-13T13:00:00Z/2021-06-13T15:30:00Z'",
                token,
            )
        start_d, end_d = parse_duration(first), parse_duration(second)
        start = None if start_d else self._instant(first, token)
        end = None if end_d else self._instant(second, token)
        try:
            if start is None and end is not None and start_d is not None:
                start = _minus(end, start_d)
            elif end is None and start is not None and end_d is not None:
                end = _plus(start, end_d)
        except OverflowError:
            raise self.error("the interval reaches past the year 9999", token) from None
        if start is None or end is None:
            raise self.error("an interval needs at least one date and time", token)
        if start >= end:
            raise self.error(f"the interval {text!r} ends before it starts", token)
        return Interval(start, end)

    def _instant(self, text: str, token: Token) -> datetime:
        try:
            ts = datetime.fromisoformat(text)
            return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
        except (ValueError, OverflowError):
            raise self.error(
                f"{text!r} is not an ISO 8601 date and time such as 2021-06-13T13:00:00Z", token
            ) from None

    def _duration(self, token: Token, where: str) -> Duration:
        duration = parse_duration(token.text) if token.kind == "word" else None
        if duration is None:
            raise self.error(
                f"{where} takes an ISO 8601 duration such as PT10M, PT1H, P1D or P1W "
                f"(at most 100 years), not {_describe(token)}",
                token,
            )
        if duration.months == 0 and duration.micros == 0:
            raise self.error(f"{where} needs a duration above zero", token)
        return duration

    # -- GROUP BY, ORDER BY ------------------------------------------------------------
    def group_window(self) -> Duration:
        self.expect("WINDOW", "WINDOW after GROUP BY (only time windows are grouped)")
        self.expect("(", "'(' after WINDOW")
        duration = self._duration(self.advance(), "WINDOW")
        self.expect(")", "')' to close WINDOW(")
        return duration

    def order_list(self) -> tuple[OrderItem, ...]:
        items = [self.order_item()]
        while self.token.text == "," and self.token.kind == "punct":
            self.advance()
            items.append(self.order_item())
        return tuple(items)

    def order_item(self) -> OrderItem:
        operand = self.operand()
        descending = False
        if self.token.is_word("ASC", "DESC"):
            descending = self.advance().text.upper() == "DESC"
        return OrderItem(operand, descending)


def _reserved(token: Token) -> bool:
    return token.text.upper() in _RESERVED


def _describe(token: Token) -> str:
    return "the end of the query" if token.kind == "end" else repr(token.text)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _add_months(ts: datetime, months: int) -> datetime:
    year, month = divmod(ts.month - 1 + months, 12)
    year += ts.year
    days_in = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if not 1 <= year <= 9999:
        raise OverflowError("year out of range")
    return ts.replace(year=year, month=month + 1, day=min(ts.day, days_in[month]))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _minus(ts: datetime, d: Duration) -> datetime:
    """``ts`` less the duration: calendar months first, then the fixed part."""
    return _add_months(ts, -d.months) - d.fixed


def _plus(ts: datetime, d: Duration) -> datetime:
    return _add_months(ts, d.months) + d.fixed


def window_start(now: datetime, d: Duration) -> datetime:
    """The start of ``WITHIN_WINDOW(d)`` evaluated at ``now``."""
    try:
        return _minus(now, d)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


# -- printing (the inverse of parse_query, for tests and logs) --------------------------


def format_query(query: Query) -> str:
    """The query as text that :func:`parse_query` reads back into an equal tree."""
    parts = ["SELECT"]
    if query.top is not None:
        parts.append(f"TOP {query.top}")
    parts.append(", ".join(_format_item(i) for i in query.items))
    parts.append(f"FROM {query.template}")
    if query.where is not None:
        parts.append("WHERE " + _format_condition(query.where))
    if query.window is not None:
        parts.append(f"GROUP BY WINDOW({query.window})")
    if query.order:
        order = (_operand(o.operand) + (" DESC" if o.descending else "") for o in query.order)
        parts.append("ORDER BY " + ", ".join(order))
    return " ".join(parts)


def _format_item(item: SelectItem) -> str:
    expr = item.expr
    text = f"{expr.function}({expr.field.name})" if isinstance(expr, Aggregate) else expr.name
    return text if item.alias is None else f"{text} AS {item.alias}"


def _operand(operand: Operand) -> str:
    return operand.alias if isinstance(operand, AliasRef) else operand.name


def _format_condition(cond: Condition) -> str:
    match cond:
        case WithinWindow(window=Interval() as interval):
            return f"WITHIN_WINDOW('{interval}')"
        case WithinWindow(window=window):
            return f"WITHIN_WINDOW({window})"
        case Comparison(operand=operand, op=op, value=value):
            return f"{_operand(operand)} {op} {_format_literal(value)}"
        case InList(operand=operand, values=values):
            return f"{_operand(operand)} IN [{', '.join(map(_format_literal, values))}]"
        case Junction(op=op, terms=terms):
            return f" {op} ".join(_format_term(t) for t in terms)
    raise AssertionError(f"unknown condition {cond!r}")  # pragma: no cover


def _format_term(cond: Condition) -> str:
    text = _format_condition(cond)
    return f"({text})" if isinstance(cond, Junction) else text


def _format_literal(value: Literal) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)
