"""The rule parser: the documented example, JSON paths in errors, durations."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aislehub.rules.model import (
    GeofenceCondition,
    LatLon,
    NoDataCondition,
    RuleInvalid,
    TelemetryCondition,
    parse_duration_ms,
    parse_rule,
)

DOC: dict[str, Any] = {
    "id": "cooler-too-warm",
    "displayName": "Cooler too warm for 15 minutes",
    "enabled": True,
    "severity": "warning",
    "target": {"template": "dtmi:aislehub:retail:Cooler;1", "filter": "$simulated = false"},
    "conditions": {
        "match": "all",
        "items": [
            {
                "type": "telemetry",
                "field": "temperature",
                "operator": ">",
                "value": 8,
                "aggregation": "avg",
                "window": "PT15M",
                "windowType": "tumbling",
            },
            {"type": "property", "field": "firmwareVersion", "operator": "!=", "value": "2.0.1"},
            {
                "type": "geofence",
                "location": "location",
                "center": {"property": "outletLocation"},
                "radiusMeters": 200,
            },
            {"type": "noData", "minutes": 60},
        ],
    },
    "actions": [
        {"type": "webhook", "url": "https://ops.example/hook", "secret": "hmac key"},
        {"type": "email", "to": ["ops@example.com"]},
        {"type": "command", "name": "defrost", "component": None, "request": None},
        {"type": "job", "job": {"group": "g"}},
    ],
}


def test_documented_example_parses() -> None:
    rule = parse_rule(DOC)
    assert rule.id == "cooler-too-warm" and rule.match == "all"
    temp = rule.conditions[0]
    assert isinstance(temp, TelemetryCondition)
    assert temp.window_ms == 15 * 60_000 and temp.aggregation == "avg" and temp.value == 8.0
    assert isinstance(rule.conditions[2], GeofenceCondition)
    assert rule.conditions[3] == NoDataCondition(3_600_000)
    assert [type(a).__name__ for a in rule.actions] == [
        "WebhookAction",
        "EmailAction",
        "CommandAction",
        "JobAction",
    ]


def test_errors_name_json_paths() -> None:
    doc = {
        **DOC,
        "severity": "loud",
        "conditions": {
            "match": "most",
            "items": [
                {"type": "telemetry", "field": "t", "operator": ">", "value": "x"},
                {
                    "type": "telemetry",
                    "field": "t",
                    "operator": ">",
                    "value": 1,
                    "aggregation": "avg",
                    "window": "P1M",
                },
                {
                    "type": "geofence",
                    "location": "loc",
                    "center": {"lat": 99, "lon": 0},
                    "radiusMeters": -1,
                },
                {"type": "bogus"},
            ],
        },
        "actions": [{"type": "webhook", "url": "ftp://x"}, {"type": "email", "to": ["nope"]}],
    }
    with pytest.raises(RuleInvalid) as caught:
        parse_rule(doc)
    paths = {path for path, _ in caught.value.errors}
    assert paths == {
        "$.severity",
        "$.conditions.match",
        "$.conditions.items[0].value",
        "$.conditions.items[1].window",
        "$.conditions.items[2].radiusMeters",
        "$.conditions.items[2].center",
        "$.conditions.items[3].type",
        "$.actions[0].url",
        "$.actions[1].to",
    }
    assert caught.value.status == 400 and caught.value.code == "InvalidRule"


def test_literal_centre_and_fractional_minutes() -> None:
    doc = {
        **DOC,
        "conditions": {
            "items": [
                {
                    "type": "geofence",
                    "location": "loc",
                    "center": {"lat": 1, "lon": 2},
                    "radiusMeters": 5,
                },
                {"type": "noData", "minutes": 0.05},
                {"type": "noData", "duration": "PT2.5S"},
            ]
        },
    }
    rule = parse_rule(doc, "path-id")
    assert rule.id == "path-id"
    fence = rule.conditions[0]
    assert isinstance(fence, GeofenceCondition) and fence.center == LatLon(1.0, 2.0)
    assert rule.conditions[1:] == (NoDataCondition(3000), NoDataCondition(2500))


def test_bad_filter_and_field_names() -> None:
    doc = {**DOC, "target": {"template": "dtmi:x:y;1", "filter": "$simulated = = 1"}}
    doc["conditions"] = {"items": [{"type": "property", "field": "a.b.c", "value": 1}]}
    with pytest.raises(RuleInvalid) as caught:
        parse_rule(doc)
    assert {p for p, _ in caught.value.errors} == {
        "$.target.filter",
        "$.conditions.items[0].field",
    }


@given(
    st.integers(0, 3),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.integers(0, 999),
)
def test_duration_arithmetic(d: int, h: int, m: int, s: int, ms: int) -> None:
    text = f"P{d}DT{h}H{m}M{s}.{ms:03d}S"
    assert parse_duration_ms(text) == (((d * 24 + h) * 60 + m) * 60 + s) * 1000 + ms


@given(st.text(max_size=12))
def test_duration_parser_never_raises(text: str) -> None:
    value = parse_duration_ms(text)
    assert value is None or value >= 0


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=12,
    )
)
def test_parser_only_raises_rule_invalid(doc: Any) -> None:
    try:
        parse_rule(doc)
    except RuleInvalid as exc:
        assert exc.errors
