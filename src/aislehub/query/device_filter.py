"""IoT Central's device-group filter (contract §5.1), parsed into a small typed tree.

::

    filter     = "SELECT" "*" "FROM" source [ "WHERE" condition ]
    source     = "devices" | templateId          (* FROM dtmi:…;1 ≡ $template = "dtmi:…;1" *)
    condition  = conjunct { "OR" conjunct }
    conjunct   = negation { "AND" negation }
    negation   = "NOT" negation | "(" condition ")" | predicate
    predicate  = field ( cmpOp literal | "IN" ( "[" | "(" ) literal { "," literal } ( "]" | ")" ) )
    field      = "$id" | "$displayName" | "$template" | "$provisioned" | "$simulated"
               | "$enabled" | "$organizations" | name [ "." name ]     (* component.property *)
    cmpOp      = "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    literal    = string | number | "true" | "false"

Keywords are case-insensitive; strings take double or single quotes. The documented filters
only show ``AND``; ``OR``, ``NOT``, parentheses and ``IN`` (from the ``/query`` grammar, §4.1)
are accepted because users write them. Types are checked here: ``$provisioned = "yes"`` is
an error with its position, not a group that silently matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from aislehub.query.lexer import FilterError, Token, string_value, tokenize

# Bounds that keep parsing and the generated SQL small; IoT Central's own query limit is far
# lower (350 characters, 10 operators, §4.3). Nesting is bounded for the recursive descent.
MAX_LENGTH = 4096
MAX_PREDICATES = 64
MAX_NESTING = 32

# system field -> the type of literal it compares with
SYSTEM_FIELDS = {
    "$id": "string",
    "$displayName": "string",
    "$template": "string",
    "$organizations": "string",
    "$provisioned": "boolean",
    "$simulated": "boolean",
    "$enabled": "boolean",
}
_BY_LOWER = {name.lower(): name for name in SYSTEM_FIELDS}
_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?")  # a DTDL name (v2 §name)
_OPS = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "TRUE", "FALSE"}

Value: TypeAlias = str | int | float | bool


@dataclass(frozen=True, slots=True)
class FieldRef:
    """``$template`` (system) or ``thermostat1.targetTemperature`` (a capability path)."""

    name: str
    path: tuple[str, ...]

    @property
    def system(self) -> bool:
        return self.name.startswith("$")


@dataclass(frozen=True, slots=True)
class Comparison:
    field: FieldRef
    op: str  # = != < <= > >=
    value: Value


@dataclass(frozen=True, slots=True)
class InList:
    field: FieldRef
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Junction:
    op: str  # AND | OR
    terms: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    term: Condition


Condition: TypeAlias = Comparison | InList | Junction | Not


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    text: str
    template: str | None  # FROM <template id>
    where: Condition | None


def parse_device_filter(text: str) -> DeviceFilter:
    """The filter's tree, or ``FilterError`` (a 400) naming the position and what was wrong."""
    if len(text) > MAX_LENGTH:
        raise FilterError(MAX_LENGTH + 1, f"a filter is at most {MAX_LENGTH} characters")
    return _Parser(text).filter()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.at = 0
        self.predicates = 0

    # -- token helpers -----------------------------------------------------------------
    @property
    def token(self) -> Token:
        return self.tokens[self.at]

    def advance(self) -> Token:
        token = self.tokens[self.at]
        self.at = min(self.at + 1, len(self.tokens) - 1)
        return token

    def expect_word(self, keyword: str, what: str) -> None:
        if not self.token.is_word(keyword):
            raise self.error(f"expected {what}, found {self.token.describe()}")
        self.advance()

    def error(self, message: str, token: Token | None = None) -> FilterError:
        return FilterError((token or self.token).position, message)

    # -- grammar -----------------------------------------------------------------------
    def filter(self) -> DeviceFilter:
        self.expect_word("SELECT", "SELECT")
        if self.token.text != "*":
            raise self.error(f"a filter selects '*', found {self.token.describe()}")
        self.advance()
        self.expect_word("FROM", "FROM")
        template = self.source()
        where = None
        if self.token.is_word("WHERE"):
            self.advance()
            where = self.condition(0)
        if self.token.kind != "end":
            raise self.error(f"unexpected {self.token.describe()}; expected AND, OR or the end")
        return DeviceFilter(self.text, template, where)

    def source(self) -> str | None:
        token = self.advance()
        if token.is_word("DEVICES"):
            return None
        if token.kind == "word" and token.text.lower().startswith(("dtmi:", "urn:")):
            return token.text
        raise self.error(
            f"FROM takes 'devices' or a device template id, not {token.describe()}", token
        )

    def condition(self, depth: int) -> Condition:
        return self.junction("OR", lambda: self.junction("AND", lambda: self.negation(depth)))

    def junction(self, op: str, term: Callable[[], Condition]) -> Condition:
        terms = [term()]
        while self.token.is_word(op):
            self.advance()
            terms.append(term())
        return terms[0] if len(terms) == 1 else Junction(op, tuple(terms))

    def negation(self, depth: int) -> Condition:
        if depth > MAX_NESTING:
            raise self.error(f"parentheses and NOT nest at most {MAX_NESTING} deep")
        if self.token.is_word("NOT"):
            self.advance()
            return Not(self.negation(depth + 1))
        if self.token.text == "(":
            self.advance()
            inner = self.condition(depth + 1)
            if self.token.text != ")":
                raise self.error(f"expected ')', found {self.token.describe()}")
            self.advance()
            return inner
        return self.predicate()

    def predicate(self) -> Condition:
        self.predicates += 1
        if self.predicates > MAX_PREDICATES:
            raise self.error(f"a filter has at most {MAX_PREDICATES} comparisons")
        field_token = self.token
        field = self.field()
        if self.token.is_word("IN"):
            self.advance()
            return InList(field, self.value_list(field, field_token))
        op_token = self.advance()
        if op_token.kind != "op":
            raise self.error(
                f"expected a comparison (=, !=, <, <=, >, >=) or IN after {field.name}, "
                f"found {op_token.describe()}",
                op_token,
            )
        op = _OPS[op_token.text]
        value = self.literal(field)
        if op not in ("=", "!=") and isinstance(value, bool):
            raise self.error(f"{op_token.text} does not compare booleans", op_token)
        return Comparison(field, op, value)

    def field(self) -> FieldRef:
        token = self.advance()
        if token.kind != "word" or token.text.upper() in _KEYWORDS:
            raise self.error(f"expected a field name, found {token.describe()}", token)
        if token.text.startswith("$"):
            name = _BY_LOWER.get(token.text.lower())
            if name is None:
                known = ", ".join(SYSTEM_FIELDS)
                raise self.error(f"unknown field {token.text!r}; use one of {known}", token)
            return FieldRef(name, (name,))
        path = tuple(token.text.split("."))
        if len(path) > 2 or not all(_NAME.fullmatch(part) for part in path):
            raise self.error(f"{token.text!r} is not a property name or component.property", token)
        return FieldRef(token.text, path)

    def value_list(self, field: FieldRef, field_token: Token) -> tuple[Value, ...]:
        opening = self.advance()
        if opening.text not in ("[", "("):
            raise self.error(f"expected '[' after IN, found {opening.describe()}", opening)
        values = [self.literal(field)]
        while self.token.text == ",":
            self.advance()
            values.append(self.literal(field))
        closing = self.advance()
        if closing.text != {"[": "]", "(": ")"}[opening.text]:
            raise self.error(f"expected ',' or the closing bracket, found {closing.describe()}")
        if len({_kind(v) for v in values}) > 1:
            raise self.error(f"the values IN a list must share one type ({field.name})", opening)
        return tuple(values)

    def literal(self, field: FieldRef) -> Value:
        token = self.advance()
        value = _literal(token)
        if value is None:
            raise self.error(
                f"expected a value (a quoted string, a number, true or false) to compare "
                f"{field.name} with, found {token.describe()}",
                token,
            )
        wanted = SYSTEM_FIELDS.get(field.name)
        if wanted is not None and _kind(value) != wanted:
            raise self.error(f"{field.name} compares with a {wanted}, not {token.text}", token)
        return value


def _literal(token: Token) -> Value | None:
    if token.kind == "string":
        return string_value(token)
    if token.kind == "number":
        integral = token.text.lstrip("-").isdigit()
        return int(token.text) if integral else float(token.text)
    if token.is_word("TRUE", "FALSE"):
        return token.text.upper() == "TRUE"
    return None


def _kind(value: Value) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"
