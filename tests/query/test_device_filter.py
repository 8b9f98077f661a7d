"""The device-group filter grammar (contract §5.1): trees, types, positioned errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aislehub.errors import BadRequest
from aislehub.query.device_filter import (
    MAX_LENGTH,
    Comparison,
    FieldRef,
    InList,
    Junction,
    Not,
    parse_device_filter,
)
from aislehub.query.lexer import FilterError


def where(text: str) -> object:
    return parse_device_filter(f"SELECT * FROM devices WHERE {text}").where


def test_documented_forms_parse() -> None:
    parsed = parse_device_filter(
        'SELECT * FROM devices WHERE $template = "dtmi:modelDefinition:dtdlv2" '
        "AND $provisioned = true"
    )
    assert parsed.template is None
    assert parsed.where == Junction(
        "AND",
        (
            Comparison(FieldRef("$template", ("$template",)), "=", "dtmi:modelDefinition:dtdlv2"),
            Comparison(FieldRef("$provisioned", ("$provisioned",)), "=", True),
        ),
    )
    assert parse_device_filter("SELECT * FROM devices").where is None
    assert parse_device_filter("SELECT * FROM dtmi:contoso:Thermostat;1").template == (
        "dtmi:contoso:Thermostat;1"
    )


def test_precedence_not_and_or_parentheses() -> None:
    a, b, c = (Comparison(FieldRef(n, (n,)), "=", 1) for n in "abc")
    assert where("a = 1 OR b = 1 AND c = 1") == Junction("OR", (a, Junction("AND", (b, c))))
    assert where("(a = 1 OR b = 1) AND c = 1") == Junction("AND", (Junction("OR", (a, b)), c))
    assert where("NOT a = 1") == Not(a)


def test_literals_fields_and_keywords() -> None:
    field = FieldRef("thermostat1.targetTemperature", ("thermostat1", "targetTemperature"))
    assert where("thermostat1.targetTemperature >= -2.5e1") == Comparison(field, ">=", -25.0)
    assert where("x <> 'it\\'s'") == Comparison(FieldRef("x", ("x",)), "!=", "it's")
    assert where("$ID in ('a', 'b')") == InList(FieldRef("$id", ("$id",)), ("a", "b"))
    assert where("n = 3") == Comparison(FieldRef("n", ("n",)), "=", 3)
    assert parse_device_filter("select * from DEVICES where $Simulated = FALSE").where == (
        Comparison(FieldRef("$simulated", ("$simulated",)), "=", False)
    )


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("SELECT * FROM devices WHERE", 28, "expected a field name"),
        ("SELECT * FROM devices WHERE a = ", 33, "expected a value"),
        ("SELECT * FROM devices WHERE a ~ 1", 31, "unexpected character"),
        ("SELECT * FROM devices WHERE a = 'x", 33, "no closing '"),
        ("SELECT * FROM devices WHERE $enabled = 1", 40, "compares with a boolean"),
        ("SELECT * FROM devices WHERE $id = true", 35, "compares with a string"),
        ("SELECT * FROM devices WHERE flag > true", 34, "does not compare booleans"),
        ("SELECT * FROM devices WHERE a.b.c = 1", 29, "component.property"),
        ("SELECT * FROM devices WHERE x IN [1, 'a']", 34, "share one type"),
        ("SELECT * FROM devices WHERE (a = 1", 35, "expected ')'"),
        ("SELECT * FROM devices WHERE a = 1 b = 2", 35, "expected AND, OR"),
        ("SELECT id FROM devices", 8, "selects '*'"),
        ("UPDATE devices", 1, "expected SELECT"),
    ],
)
def test_errors_carry_the_position(text: str, position: int, words: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_device_filter(text)
    assert caught.value.position == position
    assert words in caught.value.message
    assert caught.value.message.startswith(f"Invalid filter at position {position}: ")
    assert isinstance(caught.value, BadRequest)


def test_limits() -> None:
    with pytest.raises(FilterError, match="at most"):
        parse_device_filter("SELECT * FROM devices WHERE " + " AND ".join(["a = 1"] * 65))
    with pytest.raises(FilterError, match="nest"):
        parse_device_filter("SELECT * FROM devices WHERE " + "(" * 40 + "a = 1" + ")" * 40)
    with pytest.raises(FilterError, match=f"at most {MAX_LENGTH}"):
        parse_device_filter("x" * (MAX_LENGTH + 1))


@given(st.text(max_size=80))
def test_any_text_parses_or_fails_with_a_filter_error(text: str) -> None:
    for candidate in (text, f"SELECT * FROM devices WHERE {text}"):
        try:
            parse_device_filter(candidate)
        except FilterError as exc:
            assert 1 <= exc.position <= len(candidate) + 1
