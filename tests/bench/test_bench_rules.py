"""``aislehub bench rules`` pieces that need no server: its rules and its table."""

from __future__ import annotations

import pytest

from aislehub.bench.rules import phase_order, render_rules_table, rule_bodies
from aislehub.cli import _parser
from aislehub.rules.model import TelemetryCondition, parse_rule


def test_the_hundred_rules_parse_and_cover_every_kind() -> None:
    rules = [parse_rule(body, f"bench-{i:03d}") for i, body in enumerate(rule_bodies(100))]
    kinds = set()
    for rule in rules:
        cond = rule.conditions[0]
        assert isinstance(cond, TelemetryCondition)
        kinds.add(
            (cond.aggregation, cond.window_ms, cond.window_type if cond.aggregation else None)
        )
    assert len(kinds) == 4


def test_table_and_cli_choice() -> None:
    figures = {
        "rules": 100,
        "without": {"acked_per_s": 50_000.0},
        "with": {"acked_per_s": 47_000.0},
        "loss_pct": 6.0,
        "rules_caught_up_s": 0.2,
        "alerts": 40,
        "alert_latency_p50_ms": 120.0,
        "alert_latency_p99_ms": 400.0,
        "alert_latency_p99_ms_by_kind": {},
    }
    assert "6.0 %" in render_rules_table(figures)
    args = _parser().parse_args(["bench", "rules", "--json"])
    assert args.scenario == "rules" and args.json
    with pytest.raises(SystemExit):
        _parser().parse_args(["rule", "frobnicate"])


def test_phases_alternate_abba_so_a_drift_weighs_on_both_sides() -> None:
    assert phase_order(1) == [False, True]
    assert phase_order(2) == [False, True, True, False]
    order = phase_order(4)
    # A steady drift (phase i costs i) adds the same to the mean of either side.
    drift = {on: sum(i for i, o in enumerate(order) if o == on) for on in (False, True)}
    assert drift[False] == drift[True]
