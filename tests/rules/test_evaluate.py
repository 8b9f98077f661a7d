"""Evaluation over column batches: windows, per-message edges, geofence, noData, restore."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aislehub.rules.evaluate import Columns, RuleEvaluator, Shared, Transition, Window, haversine_m
from aislehub.rules.model import parse_rule
from aislehub.rules.state import dump_state, load_state

T0 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000  # a minute boundary


def rule(
    *items: dict[str, Any], match: str = "all", shared: Shared | None = None, rule_id: str = "r"
) -> RuleEvaluator:
    doc = {
        "id": rule_id,
        "target": {"template": "dtmi:t:x;1"},
        "conditions": {"match": match, "items": list(items)},
    }
    ev = RuleEvaluator(parse_rule(doc), since_ms=T0, shared=shared)
    ev.set_members(np.ones(4, bool), T0)
    return ev


def cols(devices: list[int], ts: list[int], **fields: list[float]) -> Columns:
    values = {(None, k, "num"): np.array(v, np.float64) for k, v in fields.items()}
    return Columns(np.array(devices, np.int64), np.array(ts, np.int64), values)


AVG = {
    "type": "telemetry",
    "field": "temp",
    "operator": ">",
    "value": 8,
    "aggregation": "avg",
    "window": "PT5S",
}


def edges(ts: list[Transition]) -> list[tuple[int, int, bool]]:
    return [(t.device, t.t_ms - T0, t.opened) for t in ts]


def test_tumbling_window_fires_once_at_its_end_and_resolves() -> None:
    ev = rule(AVG)
    out = ev.step(cols([0, 0, 1], [T0 + 100, T0 + 2000, T0 + 3000], temp=[9, 10, 1]), T0 + 3000)
    assert out == []  # the window is still open
    out = ev.step(cols([0], [T0 + 4000], temp=[12]), T0 + 5000)
    assert edges(out) == [(0, 5000, True)]  # avg 10.33 > 8 at the window's end
    out = ev.step(cols([0], [T0 + 6000], temp=[11]), T0 + 9000)
    assert out == []  # still warm: no second alert
    out = ev.step(cols([0], [T0 + 11000], temp=[2]), T0 + 15000)
    assert edges(out) == [(0, 15000, False)]  # the window [10 s, 15 s) averaged 2


def test_per_message_condition_edges_within_a_batch() -> None:
    ev = rule({"type": "telemetry", "field": "temp", "operator": ">=", "value": 5})
    out = ev.step(cols([1, 1, 1, 1], [T0 + 1, T0 + 2, T0 + 3, T0 + 4], temp=[1, 6, 7, 2]), T0)
    assert edges(out) == [(1, 2, True), (1, 4, False)]


def test_sliding_window_moves_by_tenths() -> None:
    ev = rule({**AVG, "windowType": "sliding", "aggregation": "max", "value": 50})
    out = ev.step(cols([2], [T0 + 1200], temp=[60]), T0 + 1500)
    assert edges(out) == [(2, 1500, True)]  # the pane [1000, 1500) closed with 60 in it
    out = ev.step(None, T0 + 7000)
    assert edges(out) == [(2, 6500, False)]  # 60 leaves the 5 s window after the pane 6000


def test_all_and_any_over_property_and_telemetry() -> None:
    items = [
        {"type": "telemetry", "field": "temp", "operator": ">", "value": 8},
        {"type": "property", "field": "fw", "operator": "!=", "value": "2.0"},
    ]
    both, either = rule(*items), rule(*items, match="any")
    batch = cols([0, 1], [T0 + 10, T0 + 10], temp=[9, 9])
    assert edges(both.step(batch, T0 + 20)) == []
    assert edges(either.step(batch, T0 + 20)) == [(0, 10, True), (1, 10, True)]
    props = {0: {"fw": "1.0"}, 1: {"fw": "2.0"}}
    assert edges(both.step(None, T0 + 30, props)) == [(0, 30, True)]


def test_geofence_from_property_centre() -> None:
    ev = rule(
        {
            "type": "geofence",
            "location": "loc",
            "center": {"property": "outlet"},
            "radiusMeters": 200,
        }
    )
    ev.step(None, T0, {0: {"outlet": {"lat": 47.6, "lon": -122.3}}})
    near = Columns(
        np.array([0]),
        np.array([T0 + 5]),
        {(None, "loc", "lat"): np.array([47.6005]), (None, "loc", "lon"): np.array([-122.3])},
    )
    far = Columns(
        np.array([0]),
        np.array([T0 + 9]),
        {(None, "loc", "lat"): np.array([47.6045]), (None, "loc", "lon"): np.array([-122.3])},
    )
    assert ev.step(near, T0 + 6) == []
    assert edges(ev.step(far, T0 + 10)) == [(0, 9, True)]


def test_no_data_fires_from_last_seen_and_clears_on_a_message() -> None:
    ev = rule({"type": "noData", "duration": "PT3S"})
    ev.set_members(np.array([True, False]), T0)
    assert ev.step(cols([0], [T0 + 1000], temp=[1]), T0 + 2000) == []
    assert edges(ev.step(None, T0 + 4500)) == [(0, 4000, True)]
    assert ev.step(None, T0 + 9000) == []  # one alert while silent
    assert edges(ev.step(cols([0], [T0 + 9500], temp=[1]), T0 + 9600)) == [(0, 9500, False)]


def test_state_survives_a_dump_mid_window() -> None:
    ev = rule(AVG)
    ev.step(cols([0, 0], [T0 + 100, T0 + 200], temp=[20, 20]), T0 + 1000)
    blob = dump_state([("a", "d0")], {("a/r", "fp"): ev.state()})
    again = rule(AVG)
    again.restore(load_state(blob).rules[("a/r", "fp")])
    assert edges(again.step(cols([0], [T0 + 3000], temp=[2]), T0 + 5000)) == [(0, 5000, True)]


def test_state_checkpoints_of_the_npz_layout_still_load() -> None:
    ev = rule(AVG)
    ev.step(cols([0, 0], [T0 + 100, T0 + 200], temp=[20, 20]), T0 + 1000)
    arrays = {"devices": np.frombuffer(b'[["a","d0"]]', np.uint8)}
    arrays |= {f"a/r|fp|{name}": a for name, a in ev.state().items()}
    out = io.BytesIO()
    np.savez_compressed(out, allow_pickle=False, **arrays)
    snapshot = load_state(out.getvalue())
    assert snapshot.devices == [("a", "d0")]
    new = load_state(dump_state([("a", "d0")], {("a/r", "fp"): ev.state()}))
    assert snapshot.rules.keys() == new.rules.keys()
    for name, array in new.rules[("a/r", "fp")].items():
        assert np.array_equal(snapshot.rules[("a/r", "fp")][name], array)
        assert array.dtype == snapshot.rules[("a/r", "fp")][name].dtype


def test_rules_over_one_aggregate_share_its_window_and_keep_their_own_alerts() -> None:
    shared = Shared()
    warn, crit = rule(AVG, shared=shared, rule_id="warn"), rule({**AVG, "value": 15}, shared=shared)
    assert len(shared.entries) == 1  # one window for both thresholds

    def step(batch: Columns | None, wm: int) -> list[tuple[str, int, int, bool]]:
        shared.step(batch, wm)
        return [
            (t.rule_id, *edge)
            for ev in (warn, crit)
            for t in ev.step(batch, wm)
            for edge in edges([t])
        ]

    assert step(cols([0, 1], [T0 + 100, T0 + 200], temp=[20, 10]), T0 + 1000) == []
    assert step(None, T0 + 5000) == [
        ("warn", 0, 5000, True),
        ("warn", 1, 5000, True),
        ("r", 0, 5000, True),
    ]
    assert step(cols([0, 1], [T0 + 5100, T0 + 5200], temp=[10, 10]), T0 + 10_000) == [
        ("r", 0, 10_000, False)
    ]


def test_hot_reload_keeps_the_shared_window_of_the_rules_left() -> None:
    shared = Shared()
    first = rule(AVG, shared=shared)
    shared.step(cols([0], [T0 + 100], temp=[20]), T0 + 1000)
    first.step(None, T0 + 1000)
    edited = rule({**AVG, "value": 9}, shared=shared)  # the rule edited mid-window
    first.close()
    other = rule({**AVG, "window": "PT2S"}, shared=shared)  # another window: starts empty
    assert len(shared.entries) == 2
    shared.step(None, T0 + 5000)
    assert edges(edited.step(None, T0 + 5000)) == [(0, 5000, True)]  # 20 before the edit counts
    assert other.step(None, T0 + 5000) == []
    edited.close(), other.close()
    assert shared.entries == {} and shared.users == {}


def test_per_message_rules_share_a_column_but_only_see_their_devices() -> None:
    shared = Shared()
    cond = {"type": "telemetry", "field": "temp", "operator": ">", "value": 5}
    a, b = rule(cond, shared=shared, rule_id="a"), rule({**cond, "value": 8}, shared=shared)
    a.set_members(np.array([True, True, False, False]), T0)
    b.set_members(np.array([False, False, True, True]), T0)
    assert len(shared.entries) == 1
    batch = cols([0, 1, 2, 3], [T0 + 1, T0 + 2, T0 + 3, T0 + 4], temp=[6, 9, 6, 9])
    shared.step(batch, T0 + 10)
    assert edges(a.step(batch, T0 + 10)) == [(0, 1, True), (1, 2, True)]
    assert edges(b.step(batch, T0 + 10)) == [(3, 4, True)]


def test_a_rule_state_with_its_own_panes_fills_a_shared_window() -> None:
    """A checkpoint from before windows were shared, or a rule's state alone."""
    alone = rule(AVG)
    alone.step(cols([0, 0], [T0 + 100, T0 + 200], temp=[20, 20]), T0 + 1000)
    saved = load_state(dump_state([("a", "d0")], {("a/r", "fp"): alone.state()})).rules
    assert "panes0.cnt" in saved[("a/r", "fp")]
    shared = Shared()
    again = rule(AVG, shared=shared)
    again.restore(saved[("a/r", "fp")])
    assert "panes0.cnt" not in again.state()  # the engine saves the shared window once
    window = next(iter(shared.entries.values()))
    assert isinstance(window, Window) and window.cnt[0].sum() == 2
    shared.step(cols([0], [T0 + 3000], temp=[2]), T0 + 5000)
    assert edges(again.step(None, T0 + 5000)) == [(0, 5000, True)]


def test_haversine_500_metres() -> None:
    d = haversine_m(
        np.array([47.0]), np.array([8.0]), np.array([47.0 + 500 / 111_195]), np.array([8.0])
    )
    assert abs(d[0] - 500) < 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 29_999), st.floats(-50, 50)), max_size=60),
    st.sampled_from(["avg", "min", "max", "sum", "count"]),
    st.sampled_from(["tumbling", "sliding"]),
    st.integers(1, 5),
    st.booleans(),
)
def test_windows_match_a_direct_computation(
    rows: list[tuple[int, int, float]], agg: str, kind: str, chunks: int, share: bool
) -> None:
    """Whatever the batching, each device's window values equal the naive aggregate, for a
    rule alone and for one sharing its window with another threshold."""
    rows = sorted(rows, key=lambda r: r[1])
    cond = {**AVG, "aggregation": agg, "windowType": kind, "operator": ">", "value": 0.0}
    shared = Shared() if share else None
    ev = rule(cond, shared=shared)
    twin = rule({**cond, "value": 10.0}, shared=shared, rule_id="twin") if shared else None
    got: list[tuple[int, int, bool]] = []
    for part in np.array_split(np.arange(len(rows)), chunks):
        chunk = [rows[i] for i in part]
        batch = (
            cols([r[0] for r in chunk], [T0 + r[1] for r in chunk], temp=[r[2] for r in chunk])
            if chunk
            else None
        )
        wm = T0 + (chunk[-1][1] if chunk else 0)
        if shared and twin:
            shared.step(batch, wm)
            twin.step(batch, wm)
        got += edges(ev.step(batch, wm))
    if shared and twin:
        shared.step(None, T0 + 60_000)
    got += edges(ev.step(None, T0 + 60_000))
    assert sorted(got) == naive(rows, agg, kind)


def naive(rows: list[tuple[int, int, float]], agg: str, kind: str) -> list[tuple[int, int, bool]]:
    step = 500 if kind == "sliding" else 5000
    out, state = [], {}
    events = []
    for end in range(step, 60_001, step):
        for dev in range(3):
            vals = [v for d, t, v in rows if d == dev and end - 5000 <= t < end]
            had = state.get(dev, False)
            if not vals and not had:
                continue
            fn = {
                "avg": lambda x: sum(x) / len(x),
                "min": min,
                "max": max,
                "sum": sum,
                "count": len,
            }[agg]
            value = fn(vals) if vals or agg == "count" else float("nan")
            holds = value > 0
            if holds != had:
                events.append((dev, end, holds))
            state[dev] = holds
    events.sort()
    out = events
    return out
