"""IoT Central's query language (contract §4.1, §4.3): trees, limits, positioned errors."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aislehub.errors import BadRequest
from aislehub.query.iotc_query import (
    MAX_LENGTH,
    Aggregate,
    AliasRef,
    Comparison,
    Duration,
    FieldRef,
    InList,
    Interval,
    Junction,
    OrderItem,
    Query,
    QueryError,
    SelectItem,
    WithinWindow,
    format_query,
    parse_duration,
    parse_query,
    window_start,
)

T = "dtmi:acme:Boiler;1"
HOUR = 3_600_000_000


def f(name: str) -> FieldRef:
    return FieldRef(name)


def where(text: str) -> object:
    return parse_query(f"SELECT temperature FROM {T} WHERE {text}").where


def error(text: str) -> QueryError:
    with pytest.raises(QueryError) as info:
        parse_query(text)
    return info.value


# -- every construct ---------------------------------------------------------------------


def test_documented_aggregation_example() -> None:
    q = parse_query(
        f"SELECT AVG(temperature), MAX(temperature) FROM {T} WHERE WITHIN_WINDOW(P1D) "
        "AND $id = 'boiler-7' GROUP BY WINDOW(PT1H) ORDER BY $ts ASC"
    )
    assert q == Query(
        items=(
            SelectItem(Aggregate("AVG", f("temperature"))),
            SelectItem(Aggregate("MAX", f("temperature"))),
        ),
        template=T,
        where=Junction(
            "AND",
            (WithinWindow(Duration(0, 24 * HOUR)), Comparison(f("$id"), "=", "boiler-7")),
        ),
        window=Duration(0, HOUR),
        order=(OrderItem(f("$ts"), descending=False),),
    )
    assert [i.key for i in q.items] == ["avg_temperature", "max_temperature"]
    assert q.aggregated


def test_top_aliases_components_and_order() -> None:
    q = parse_query(
        f"select top 5 $ID, thermostat1.temperature as t, count(humidity) "
        f"from {T} where t >= -2.5e1 order by t desc, $id"
    )
    assert q.top == 5
    assert q.items == (
        SelectItem(f("$id")),
        SelectItem(f("thermostat1.temperature"), "t"),
        SelectItem(Aggregate("COUNT", f("humidity"))),
    )
    assert [i.key for i in q.items] == ["$id", "t", "count_humidity"]
    assert q.where == Comparison(AliasRef("t"), ">=", -25.0)
    assert q.order == (OrderItem(AliasRef("t"), True), OrderItem(f("$id")))
    assert q.items[1].expr == FieldRef("thermostat1.temperature")
    ref = q.items[1].expr
    assert isinstance(ref, FieldRef) and (ref.component, ref.capability) == (
        "thermostat1",
        "temperature",
    )
    assert q.item("t") is q.items[1]


def test_comparisons_in_and_literals() -> None:
    assert where("a <> 'it\\'s'") == Comparison(f("a"), "!=", "it's")
    assert where("a != 3") == Comparison(f("a"), "!=", 3)
    assert where("$simulated = TRUE") == Comparison(f("$simulated"), "=", True)
    assert where("a < 1.5") == Comparison(f("a"), "<", 1.5)
    assert where("a <= 1") == Comparison(f("a"), "<=", 1)
    assert where("a > 1") == Comparison(f("a"), ">", 1)
    assert where("$Id IN ['x', 'y']") == InList(f("$id"), ("x", "y"))
    assert where("a in [1, 2.5, false]") == InList(f("a"), (1, 2.5, False))


def test_and_binds_tighter_than_or_and_parentheses_group() -> None:
    a, b, c = (Comparison(f(n), "=", 1) for n in "abc")
    assert where("a = 1 OR b = 1 AND c = 1") == Junction("OR", (a, Junction("AND", (b, c))))
    assert where("(a = 1 OR b = 1) AND c = 1") == Junction("AND", (Junction("OR", (a, b)), c))
    assert where("((a = 1))") == a


def test_within_window_durations_and_intervals() -> None:
    assert where("WITHIN_WINDOW(PT10M)") == WithinWindow(Duration(0, HOUR // 6))
    start = datetime(2021, 6, 13, 13, tzinfo=UTC)
    end = datetime(2021, 6, 13, 15, 30, tzinfo=UTC)
    assert where("WITHIN_WINDOW('2021-06-13T13:00:00Z/2021-06-13T15:30:00Z')") == WithinWindow(
        Interval(start, end)
    )
    assert where("WITHIN_WINDOW('2021-06-13T13:00:00Z/PT2H30M')") == WithinWindow(
        Interval(start, end)
    )
    assert where("WITHIN_WINDOW('PT2H30M/2021-06-13T15:30:00Z')") == WithinWindow(
        Interval(start, end)
    )
    local = where("WITHIN_WINDOW('2021-06-13T15:00:00+02:00/2021-06-13T15:30:00')")
    assert local == WithinWindow(Interval(start, end))


@pytest.mark.parametrize(
    ("text", "months", "delta"),
    [
        ("PT10M", 0, timedelta(minutes=10)),
        ("PT5H", 0, timedelta(hours=5)),
        ("P1D", 0, timedelta(days=1)),
        ("P2DT12H", 0, timedelta(days=2, hours=12)),
        ("P1W", 0, timedelta(weeks=1)),
        ("pt1.5s", 0, timedelta(seconds=1.5)),
        ("P1Y2M", 14, timedelta(0)),
        ("P1MT1M", 1, timedelta(minutes=1)),
    ],
)
def test_durations(text: str, months: int, delta: timedelta) -> None:
    duration = parse_duration(text)
    assert duration == Duration(months, delta // timedelta(microseconds=1))
    assert parse_duration(str(duration)) == duration


@pytest.mark.parametrize("text", ["P", "PT", "P1DT", "1D", "PT1D", "P1H", "PT1.1234567S", "P1X"])
def test_not_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_window_start_uses_calendar_months() -> None:
    now = datetime(2024, 3, 31, 12, tzinfo=UTC)
    assert window_start(now, Duration(1, 0)) == datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert window_start(now, Duration(0, HOUR)) == now - timedelta(hours=1)
    assert window_start(now, Duration(12 * 5000, 0)) == datetime.min.replace(tzinfo=UTC)


def test_keywords_are_case_insensitive_and_names_are_not_keywords() -> None:
    q = parse_query(f"SeLeCt count, Window FROM {T} gRoUp By WiNdOw(p1d)")
    assert q.items == (SelectItem(f("count")), SelectItem(f("Window")))
    assert q.window == Duration(0, 24 * HOUR)


# -- limits (§4.3) -------------------------------------------------------------------------


def test_length_limit() -> None:
    text = f"SELECT temperature FROM {T} WHERE $id = '{'x' * 300}'"
    assert len(text) > MAX_LENGTH
    err = error(text)
    assert err.position == MAX_LENGTH + 1 and "at most 350 characters" in err.message
    fits = f"SELECT temperature FROM {T} WHERE $id = '"
    fits += "x" * (MAX_LENGTH - len(fits) - 1) + "'"
    assert len(fits) == MAX_LENGTH and parse_query(fits).where is not None


def test_select_limit_names_the_sixteenth_item() -> None:
    names = [f"f{i}" for i in range(16)]
    assert len(parse_query(f"SELECT {', '.join(names[:15])} FROM {T}").items) == 15
    text = f"SELECT {', '.join(names)} FROM {T}"
    err = error(text)
    assert err.position == text.index("f15") + 1 and "at most 15 items" in err.message


def test_operator_limit_names_the_eleventh_operator() -> None:
    ten = " AND ".join(["a = 1"] * 4) + " OR b IN [1] AND WITHIN_WINDOW(PT1H)"  # not counted
    assert ten.count("=") + ten.count(" IN ") + ten.count(" AND ") + ten.count(" OR ") == 10
    assert where(ten) is not None
    text = f"SELECT a FROM {T} WHERE {ten} AND d IN [1]"
    err = error(text)
    assert err.position == text.rindex("AND") + 1 and "at most 10 operators" in err.message
    assert "11th" in err.message


@pytest.mark.parametrize(
    ("text", "at", "words"),
    [
        (f"SELECT * FROM {T}", "*", "SELECT * is not supported"),
        (f"SELECT COUNT(*) FROM {T}", "*", "COUNT takes a field"),
        (f"SELECT TOP 10001 a FROM {T}", "10001", "at most 10,000"),
        (f"SELECT TOP 0 a FROM {T}", "0", "positive whole number"),
        (f"SELECT TOP 1.5 a FROM {T}", "1.5", "positive whole number"),
    ],
)
def test_limits_and_star(text: str, at: str, words: str) -> None:
    err = error(text)
    assert err.position == text.index(at) + 1 and words in err.message


# -- positioned syntax errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "at", "words"),
    [
        ("SELEC a FROM x", "SELEC", "expected SELECT"),
        (f"SELECT a {T}", T, "expected FROM"),
        ("SELECT a FROM devices", "devices", "device template id"),
        (f"SELECT MEDIAN(a) FROM {T}", "MEDIAN", "unknown function"),
        (f"SELECT AVG(a FROM {T}", "FROM", "')' to close AVG("),
        (f"SELECT $name FROM {T}", "$name", "unknown system field"),
        (f"SELECT a.b.c FROM {T}", "a.b.c", "component.field"),
        (f"SELECT a AS FROM {T}", "FROM", "an alias"),
        (f"SELECT a AS x, b AS x FROM {T}", "x FROM", "used twice"),
        (f"SELECT a, AVG(b) AS a FROM {T}", "AVG", "two select items are named 'a'"),
        (f"SELECT a FROM {T} WHERE a", "", "expected a comparison"),
        (f"SELECT a FROM {T} WHERE a = b", "b", "expected a value"),
        (f"SELECT a FROM {T} WHERE a > true", "true", "does not compare booleans"),
        (f"SELECT a FROM {T} WHERE a IN ('x')", "(", "'[' after IN"),
        (f"SELECT a FROM {T} WHERE a IN ['x' 'y']", "'y'", "',' or ']'"),
        (f"SELECT a FROM {T} WHERE (a = 1", "", "')' or AND/OR"),
        (f"SELECT a FROM {T} WHERE WITHIN_WINDOW(1H)", "1", "ISO 8601 duration"),
        (f"SELECT a FROM {T} WHERE WITHIN_WINDOW(PT0S)", "PT0S", "above zero"),
        (f"SELECT a FROM {T} WHERE WITHIN_WINDOW('2021-06-13')", "'20", "'start/end'"),
        (f"SELECT a FROM {T} WHERE WITHIN_WINDOW('x/PT1H')", "'x", "not an ISO 8601 date"),
        (f"SELECT a FROM {T} WHERE WITHIN_WINDOW('PT1H/PT1H')", "'PT", "at least one date"),
        (
            f"SELECT a FROM {T} WHERE WITHIN_WINDOW('2021-06-14T00:00:00Z/2021-06-13T00:00:00Z')",
            "'2021-06-14",
            "ends before it starts",
        ),
        (f"SELECT a FROM {T} WHERE a = 1e999", "1e999", "out of range"),
        (f"SELECT a FROM {T} GROUP BY $id", "$id", "WINDOW after GROUP BY"),
        (f"SELECT a FROM {T} ORDER a", "a", "BY after ORDER"),
        (f"SELECT a FROM {T} ORDER BY a DOWN", "DOWN", "should end here"),
        (f"SELECT a FROM {T} WHERE a = 'x", "'x", "no closing '"),
        (f"SELECT a FROM {T} WHERE a = #", "#", "unexpected character"),
    ],
)
def test_errors_name_the_position(text: str, at: str, words: str) -> None:
    err = error(text)
    expected = len(text) + 1 if at == "" else text.rindex(at) + 1
    assert (err.position, words in err.message) == (expected, True), err.message
    assert err.message.startswith(f"Invalid query at position {expected}: ")
    assert isinstance(err, BadRequest) and err.status == 400


def test_parentheses_nest_at_most_ten_deep() -> None:
    assert where("(" * 10 + "a = 1" + ")" * 10) == Comparison(f("a"), "=", 1)
    text = f"SELECT a FROM {T} WHERE " + "(" * 11 + "a = 1" + ")" * 11
    assert "nest at most 10" in error(text).message


# -- properties ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_arbitrary_text_raises_only_query_errors(text: str) -> None:
    with contextlib.suppress(QueryError):
        parse_query(text)


_WORDS = st.sampled_from(
    [
        *("SELECT", "TOP", "10", "a", "AVG(", "b.c", ",", "AS", "x", "FROM", T, "WHERE", "AND"),
        *("OR", "(", ")", "=", ">", "IN", "[", "]", "1", "'s'", "true", "WITHIN_WINDOW("),
        *("PT1H", "GROUP", "BY", "WINDOW(", "ORDER", "DESC", "$id", "$ts", "*"),
        "'2021-01-01T00:00:00Z/P1D'",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_WORDS, max_size=30))
def test_arbitrary_token_soup_raises_only_query_errors(words: list[str]) -> None:
    with contextlib.suppress(QueryError):
        parse_query(" ".join(words))


# Aliases are k0…k3: no generated name may be spelled like one (it would read as the alias).
_names = st.from_regex(r"[a-z][a-zA-Z0-9_]{0,6}[a-z0-9]", fullmatch=True).filter(
    lambda n: (
        n.upper() not in {"TOP", "AS", "IN", "OR", "AND", "BY", "ASC", "DESC", "FROM"}
        and not re.fullmatch(r"k\d", n)
    )
)
_fields = st.one_of(
    st.sampled_from(["$id", "$ts", "$provisioned", "$simulated"]),
    _names,
    st.builds(lambda c, n: f"{c}.{n}", _names, _names),
).map(FieldRef)
_literals = st.one_of(
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
)
_durations = st.builds(
    Duration, st.integers(0, 24), st.integers(0, 40 * 86_400).map(lambda s: s * 1_000_000)
).filter(lambda d: d.months or d.micros)
_instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_intervals = st.builds(
    lambda a, seconds: Interval(a, a + timedelta(seconds=seconds)),
    _instants,
    st.integers(1, 10**7),
)


def _conditions(operand: st.SearchStrategy[FieldRef]) -> st.SearchStrategy[object]:
    leaves = st.one_of(
        st.builds(
            Comparison,
            operand,
            st.sampled_from(["=", "!="]),
            _literals,
        ),
        st.builds(Comparison, operand, st.sampled_from(["<", "<=", ">", ">="]), _literals).filter(
            lambda c: not isinstance(c.value, bool)
        ),
        st.builds(InList, operand, st.lists(_literals, min_size=1, max_size=3).map(tuple)),
        st.builds(WithinWindow, st.one_of(_durations, _intervals)),
    )

    def junctions(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
        return st.builds(
            lambda op, terms: Junction(op, tuple(terms)),
            st.sampled_from(["AND", "OR"]),
            st.lists(children, min_size=2, max_size=3),
        ).filter(lambda j: all(not (isinstance(t, Junction) and t.op == j.op) for t in j.terms))

    return st.recursive(leaves, junctions, max_leaves=4)


@st.composite
def queries(draw: st.DrawFn) -> Query:
    count = draw(st.integers(1, 4))
    items = []
    for i in range(count):
        field = draw(_fields)
        expr = Aggregate(draw(st.sampled_from(["AVG", "MIN", "LAST"])), field) if i % 2 else field
        alias = draw(st.one_of(st.none(), st.just(f"k{i}")))
        items.append(SelectItem(expr, alias))
    keys = [i.key for i in items]
    if len(set(keys)) != len(keys):
        items = [SelectItem(i.expr, f"k{n}") for n, i in enumerate(items)]
    aliases = [i.alias for i in items if i.alias]
    operand = _fields | (st.sampled_from(aliases).map(AliasRef) if aliases else _fields)
    order = draw(st.lists(st.builds(OrderItem, operand, st.booleans()), max_size=2))
    return Query(
        items=tuple(items),
        template=draw(st.sampled_from([T, "dtmi:com:example:Thermostat;2", "urn:a:b:1"])),
        top=draw(st.one_of(st.none(), st.integers(1, 10_000))),
        where=draw(st.one_of(st.none(), _conditions(operand))),  # type: ignore[arg-type]
        window=draw(st.one_of(st.none(), _durations)),
        order=tuple(order),
    )


@settings(max_examples=300, deadline=None)
@given(queries())
def test_printed_queries_parse_back_to_the_same_tree(q: Query) -> None:
    text = format_query(q)
    assume(len(text) <= MAX_LENGTH)
    assert parse_query(text) == q
