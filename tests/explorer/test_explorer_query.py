"""The explorer's query model on the real stores, DuckDB and PostgreSQL: split, sort, limit,
other, downsampling, rollups against raw points, edge cases, tenant isolation, and the
same answers from both stores for the same data."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.explorer.conftest import APP, T0, Fleet, columns, open_fleet

from aislehub.errors import BadRequest
from aislehub.explorer import parse_explorer_query, planner, run_explorer_query
from aislehub.explorer.export import to_csv
from aislehub.store.cloud_properties import CloudValues
from aislehub.store.telemetry import DEVICE_CATALOG_SCHEMA, TEMPLATE_FIELDS_SCHEMA, Catalog


def eight_devices(fleet: Fleet) -> None:
    """d1 … d8, each sending its number + 0 / + 2 every 10 s for 10 minutes."""
    for n in range(1, 9):
        fleet.device(f"d{n}")
    fleet.send(
        [
            (f"d{n}", T0 + timedelta(seconds=10 * i), {"temp": n + (i % 2) * 2})
            for i in range(60)
            for n in range(1, 9)
        ]
    )


def test_split_by_device_sort_highest_limit_folds_the_rest_into_other(fleet: Fleet) -> None:
    eight_devices(fleet)
    result = fleet.query(metric="temp", aggregation="max", splitBy="device", limit=3, grain="PT1M")
    assert [s.name for s in result.series] == ["d8", "d7", "d6", "other"]
    assert [s.total for s in result.series] == [10, 9, 8, 7]
    other = result.series[-1]
    assert other.other and other.members == 5
    assert result.source == "rollup" and result.bucket == timedelta(minutes=1)
    assert len(result.time) == 10  # minutes with data; the range's other 50 have none


def test_sort_lowest_and_other_is_the_aggregate_of_its_points(fleet: Fleet) -> None:
    eight_devices(fleet)
    result = fleet.query(
        metric="temp", aggregation="avg", splitBy="device", sort="lowest", limit=2, grain="PT5M"
    )
    assert [s.name for s in result.series] == ["d1", "d2", "other"]
    assert [s.total for s in result.series] == [2.0, 3.0, pytest.approx(6.5)]
    assert columns(result)["other"] == [pytest.approx(6.5), pytest.approx(6.5)]


def test_no_split_is_one_series_named_by_the_metric(fleet: Fleet) -> None:
    eight_devices(fleet)
    result = fleet.query(metric="temp", aggregation="count", grain="PT10M")
    assert [(s.name, s.total) for s in result.series] == [("temp", 480.0)]
    assert result.values == [[480.0]]


def test_split_by_template_and_by_tag(fleet: Fleet) -> None:
    fleet.device("a", template="dtmi:x:A;1")
    fleet.device("b", template="dtmi:x:B;1")
    fleet.device("c")
    fleet.store.cloud.save(APP, "a", CloudValues({"store": "north"}))
    fleet.store.cloud.save(APP, "b", CloudValues({"store": "north"}))
    fleet.send([(d, T0, {"temp": v}) for d, v in (("a", 1), ("b", 3), ("c", 10))])
    fleet.telemetry.sync_catalog(_catalog(fleet))
    by_template = fleet.query(metric="temp", aggregation="max", splitBy="template")
    assert [(s.name, s.total) for s in by_template.series] == [
        ("(none)", 10.0),
        ("dtmi:x:B;1", 3.0),
        ("dtmi:x:A;1", 1.0),
    ]
    by_tag = fleet.query(metric="temp", aggregation="avg", splitBy={"tag": "store"})
    assert [(s.name, s.total) for s in by_tag.series] == [("(none)", 10.0), ("north", 2.0)]


def test_scope_narrows_the_devices(fleet: Fleet) -> None:
    eight_devices(fleet)
    result = fleet.query(
        metric="temp", aggregation="max", splitBy="device", scope={"devices": ["d2", "d5"]}
    )
    assert [s.name for s in result.series] == ["d5", "d2"]


@pytest.mark.parametrize("aggregation", ["avg", "min", "max", "sum", "count"])
@pytest.mark.parametrize("grain", ["PT1M", "PT5M", "PT1H"])
def test_rollups_and_raw_points_agree(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, aggregation: str, grain: str
) -> None:
    for n in range(3):
        fleet.device(f"d{n}")
    # Several batches touch the same minutes, so the rollup rows are merged.
    for batch in range(4):
        fleet.send(
            [
                (f"d{n}", T0 + timedelta(seconds=7 * i + batch), {"temp": math.sin(i + n) * 10})
                for i in range(batch * 30, batch * 30 + 30)
                for n in range(3)
            ]
        )
    query = {"metric": "temp", "aggregation": aggregation, "grain": grain, "splitBy": "device"}
    rolled = fleet.query(**query)
    assert rolled.source == "rollup"
    monkeypatch.setattr(planner, "uses_rollup", lambda q: False)
    raw = fleet.query(**query)
    assert raw.source == "raw"
    assert [s.name for s in rolled.series] == [s.name for s in raw.series]
    assert rolled.time == raw.time
    for a, b in zip(rolled.values, raw.values, strict=True):
        assert a == pytest.approx(b)


def test_rollup_holds_one_row_per_field_and_minute(fleet: Fleet) -> None:
    fleet.device("d")
    for i in range(5):
        fleet.send([("d", T0 + timedelta(seconds=i), {"temp": i, "rh": 50})])
    _, rows = fleet.telemetry.query(
        "SELECT name, count, sum, min, max FROM telemetry_1m ORDER BY name", []
    )
    assert rows == [("rh", 5, 250.0, 50.0, 50.0), ("temp", 5, 10.0, 0.0, 4.0)]


def test_percentiles_read_raw_points(fleet: Fleet) -> None:
    eight_devices(fleet)
    result = fleet.query(metric="temp", aggregation="p95", grain="PT10M")
    assert result.source == "raw"
    assert result.series[0].total == pytest.approx(10.0)


def test_raw_downsampling_keeps_the_extremes(fleet: Fleet) -> None:
    fleet.device("d")
    values = [math.sin(i / 50) for i in range(3600)]
    values[1234] = 99.0  # a one-point spike
    values[2345] = -42.0
    fleet.send([("d", T0 + timedelta(seconds=i), {"temp": v}) for i, v in enumerate(values)])
    result = fleet.query(metric="temp", mode="raw", points=100)
    (column,) = result.values
    kept = [v for v in column if v is not None]
    assert 100 <= len(kept) <= 200
    assert max(kept) == 99.0 and min(kept) == -42.0
    spike = T0 + timedelta(seconds=1234)
    assert result.time[column.index(99.0)] == int(spike.timestamp() * 1000)


def spiky_devices(fleet: Fleet) -> None:
    """d1 … d5 over an hour at 1 Hz: a sine offset by the device's number, and one
    one-second spike per device (up on even devices, down on odd ones)."""
    for n in range(1, 6):
        fleet.device(f"d{n}")
    points = []
    for n in range(1, 6):
        for i in range(3600):
            value = n + math.sin(i / 40 + n)
            if i == 500 * n:
                value = 100.0 * n if n % 2 == 0 else -100.0 * n
            points.append((f"d{n}", T0 + timedelta(seconds=i), {"temp": value}))
    fleet.send(points)


@pytest.mark.parametrize("aggregation", ["avg", "min", "max", "sum", "count", "p95"])
def test_raw_chart_ranks_and_totals_like_the_aggregate(fleet: Fleet, aggregation: str) -> None:
    """A raw chart ranks its series from the min/max pass's partials (a percentile on the
    points themselves): the same series, order and totals as an aggregate over the range."""
    spiky_devices(fleet)
    query = {"metric": "temp", "aggregation": aggregation, "splitBy": "device", "limit": 2}
    raw = fleet.query(mode="raw", points=50, **query)
    whole = fleet.query(grain="PT1H", **query)
    assert [s.name for s in raw.series] == [s.name for s in whole.series]
    assert [s.members for s in raw.series] == [1, 1, 3]
    for a, b in zip(raw.series, whole.series, strict=True):
        assert a.total == pytest.approx(b.total)


@pytest.mark.parametrize("sort", ["highest", "lowest"])
def test_raw_chart_other_keeps_the_extremes_of_its_members(fleet: Fleet, sort: str) -> None:
    spiky_devices(fleet)
    result = fleet.query(
        metric="temp", aggregation="avg", splitBy="device", limit=2, sort=sort, mode="raw",
        points=60,
    )  # fmt: skip
    kept = ["d5", "d4"] if sort == "highest" else ["d1", "d2"]
    assert [s.name for s in result.series] == [*kept, "other"]
    drawn = columns(result)
    folded = [n for n in range(1, 6) if f"d{n}" not in kept]
    spikes = {100.0 * n if n % 2 == 0 else -100.0 * n: 500 * n for n in folded}
    for value, second in spikes.items():  # every member's spike, at its own time
        assert value in drawn["other"]
        at = result.time[drawn["other"].index(value)]
        assert at == int((T0 + timedelta(seconds=second)).timestamp() * 1000)
    for name in kept:  # a kept series draws its own spike, not the others'
        n = int(name[1:])
        assert (100.0 * n if n % 2 == 0 else -100.0 * n) in drawn[name]
        assert not set(spikes) & set(drawn[name])
    for column in result.values:  # at most a lowest and a highest point per pixel
        assert sum(v is not None for v in column) <= 2 * 60


def test_raw_chart_reads_the_points_once(fleet: Fleet) -> None:
    """The min/max pass carries the ranking's partials: the raw points are scanned once
    and grouped per key and pixel; no later step (ranking, folding into "other", totals)
    reads them again (PostgreSQL: one scan node over the day's partition)."""
    spiky_devices(fleet)
    body = {"metric": "temp", "mode": "raw", "splitBy": "device", "limit": 2, "points": 100,
            "from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()}  # fmt: skip
    plan = planner.plan_explorer_query(
        parse_explorer_query(body),
        APP,
        planner.ResolvedScope(),
        planner.ResolvedSplit("device"),
        fleet.telemetry.dialect,
    )
    _, rows = fleet.telemetry.query("EXPLAIN (ANALYZE, FORMAT json) " + plan.sql, plan.params)
    if fleet.telemetry.dialect == "postgres":
        scans: list[str] = []  # the nodes that read telemetry_num's partitions

        def visit(node: dict[str, Any]) -> None:
            if str(node.get("Relation Name", "")).startswith("telemetry_num"):
                scans.append(node["Node Type"])
            for child in node.get("Plans", ()):
                visit(child)

        visit(rows[0][0][0]["Plan"])
        assert len(scans) == 1, scans  # one day's partition, once
        return
    busy: list[str] = []  # the operators that put out a row per raw point or more

    def walk(node: dict[str, Any]) -> None:
        if node.get("intermediate_rows", 0) >= 5 * 3600:
            busy.append(node["type"])
        for child in node.get("children", ()):
            walk(child)

    for root in json.loads(rows[0][1])["operator"]:
        walk(root)
    assert busy.count("TABLE_SCAN") + busy.count("SEQ_SCAN") == 1
    assert set(busy) <= {"TABLE_SCAN", "SEQ_SCAN", "PROJECTION", "FILTER"}


def test_sparse_raw_points_come_back_as_they_are(fleet: Fleet) -> None:
    fleet.device("d")
    fleet.send([("d", T0 + timedelta(minutes=i), {"temp": i}) for i in range(5)])
    result = fleet.query(metric="temp", mode="raw", points=1000)
    assert result.values == [[0, 1, 2, 3, 4]]


def test_point_budget_warns_and_load_anyway_loads(fleet: Fleet) -> None:
    fleet.device("d")
    fleet.send([("d", T0 + timedelta(seconds=i), {"temp": i}) for i in range(3600)])
    end = T0 + timedelta(hours=1)
    body = {"metric": "temp", "mode": "raw", "downsample": False}
    parsed = parse_explorer_query({**body, "from": T0.isoformat(), "to": end.isoformat()})
    warned = run_explorer_query(parsed, APP, fleet.store, fleet.telemetry, budget=1000)
    assert warned.warning is not None and warned.warning["points"] == 3600
    assert warned.values == []
    loaded = run_explorer_query(
        dataclasses.replace(parsed, load_anyway=True),
        APP,
        fleet.store,
        fleet.telemetry,
        budget=1000,
    )
    assert loaded.warning is None and loaded.points == 3600


def test_empty_range_one_point_and_huge_grain(fleet: Fleet) -> None:
    fleet.device("d")
    empty = fleet.query(metric="temp", splitBy="device")
    assert empty.series == [] and empty.time == [] and empty.values == []
    fleet.send([("d", T0 + timedelta(minutes=3), {"temp": 5.5})])
    one = fleet.query(metric="temp", splitBy="device", mode="raw")
    assert one.values == [[5.5]]
    huge = fleet.query(metric="temp", grain="P7D", aggregation="sum")
    assert huge.values == [[5.5]] and len(huge.time) == 1
    assert huge.start <= T0.replace(tzinfo=None) and huge.end - huge.start == timedelta(days=7)


def test_other_apps_data_is_never_read(fleet: Fleet) -> None:
    fleet.device("d")
    fleet.device("d", app_id="app-b")
    fleet.send([("d", T0, {"temp": 1.0})])
    fleet.send([("d", T0, {"temp": 100.0})], app_id="app-b")
    ours = fleet.query(metric="temp", aggregation="max", splitBy="device")
    assert [(s.name, s.total) for s in ours.series] == [("d", 1.0)]
    theirs = fleet.query(app_id="app-b", metric="temp", aggregation="max", scope={"devices": ["d"]})
    assert theirs.series[0].total == 100.0


def test_csv_export_is_what_is_charted(fleet: Fleet) -> None:
    eight_devices(fleet)
    result = fleet.query(metric="temp", aggregation="max", splitBy="device", limit=2, grain="PT5M")
    assert to_csv(result).splitlines() == [
        "time,d8,d7,other",
        "2025-03-01T12:00:00.000Z,10.0,9.0,8.0",
        "2025-03-01T12:05:00.000Z,10.0,9.0,8.0",
    ]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"metric": "a.b.c"},
        {"metric": "t", "aggregation": "median"},
        {"metric": "t", "range": "P1M"},
        {"metric": "t", "grain": "PT0.5S"},
        {"metric": "t", "splitBy": "store"},
        {"metric": "t", "limit": 0},
        {"metric": "t", "from": "yesterday"},
        {"metric": "t", "scope": {"devices": []}},
        {"metric": "t", "bogus": 1},
    ],
)
def test_bad_queries_are_400s(body: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        parse_explorer_query(body)


def test_auto_grain_fits_the_chart_width() -> None:
    q = parse_explorer_query({"metric": "t", "range": "PT24H", "points": 1000})
    assert q.grain == timedelta(minutes=5)
    q = parse_explorer_query({"metric": "t", "range": "PT24H", "points": 1440})
    assert q.grain == timedelta(minutes=1)


def _catalog(fleet: Fleet) -> Catalog:
    rows = fleet.store.device_catalog()
    devices = pa.Table.from_pylist(
        [dict(zip(DEVICE_CATALOG_SCHEMA.names, row, strict=True)) for row in rows],
        schema=DEVICE_CATALOG_SCHEMA,
    )
    return Catalog(devices, TEMPLATE_FIELDS_SCHEMA.empty_table())


@pytest.mark.parametrize(
    "query",
    [
        {"aggregation": "max", "splitBy": "device", "limit": 2, "grain": "PT1M"},
        {"aggregation": "avg", "splitBy": "device", "limit": 3, "sort": "lowest", "grain": "PT5M"},
        {"aggregation": "count", "grain": "PT10M"},
        {"aggregation": "sum", "splitBy": {"tag": "store"}, "grain": "PT15M"},
        {"aggregation": "min", "splitBy": "device", "grain": "PT30S"},
        {"aggregation": "p95", "splitBy": "device", "limit": 2, "grain": "PT10M"},
        {"aggregation": "avg", "splitBy": "device", "limit": 2, "mode": "raw", "points": 40},
        {"aggregation": "p50", "splitBy": "device", "limit": 1, "mode": "raw", "points": 30},
        {"aggregation": "max", "scope": {"devices": ["d2", "d4"]}, "mode": "raw", "points": 25},
        {"aggregation": "max", "mode": "raw", "downsample": False, "scope": {"devices": ["d1"]}},
    ],
)
def test_both_stores_give_the_same_answer(tmp_path: Path, query: dict[str, Any]) -> None:
    """The same messages in both stores, the same query: the same series, totals, times
    and values (values to the last few bits: the engines sum in different orders)."""
    answers = []
    for backend in ("duckdb", "postgres"):
        with open_fleet(tmp_path, backend) as fleet:
            spiky_devices(fleet)
            for n in (1, 2, 3):
                fleet.store.cloud.save(APP, f"d{n}", CloudValues({"store": "north"}))
            answers.append(fleet.query(metric="temp", **query))
    duck, pg = answers
    assert duck.series and duck.time
    assert [(s.name, s.members, s.other) for s in pg.series] == [
        (s.name, s.members, s.other) for s in duck.series
    ]
    assert [s.total for s in pg.series] == pytest.approx([s.total for s in duck.series])
    assert pg.time == duck.time and pg.source == duck.source
    for a, b in zip(pg.values, duck.values, strict=True):
        assert a == pytest.approx(b)


@pytest.mark.parametrize("aggregation", ["avg", "min", "max", "sum", "count"])
@pytest.mark.parametrize("grain", ["PT1M", "PT10M", "PT1H", "PT2H"])
def test_rollups_agree_with_raw_points_across_partial_hours(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, aggregation: str, grain: str
) -> None:
    """A range from 10:20 to 13:40: at minute grains the keys' totals come from whole hours
    (PostgreSQL's hourly rollup) and the edge minutes; at hour grains from the hourly rows.
    Every answer equals the raw points'."""
    for n in range(4):
        fleet.device(f"d{n}")
    start = T0 - timedelta(hours=1, minutes=40)
    fleet.send(
        [
            (f"d{n}", start + timedelta(seconds=37 * i + n), {"temp": math.cos(i * (n + 1)) * 9})
            for i in range(330)
            for n in range(4)
        ]
    )
    query = {"metric": "temp", "aggregation": aggregation, "grain": grain, "splitBy": "device",
             "limit": 2, "from": start.isoformat(),
             "to": (T0 + timedelta(hours=1, minutes=40)).isoformat()}  # fmt: skip
    rolled = fleet.query(**query)
    assert rolled.source == "rollup"
    monkeypatch.setattr(planner, "uses_rollup", lambda q: False)
    raw = fleet.query(**query)
    assert [(s.name, s.members) for s in rolled.series] == [(s.name, s.members) for s in raw.series]
    assert [s.total for s in rolled.series] == pytest.approx([s.total for s in raw.series])
    assert rolled.time == raw.time
    for a, b in zip(rolled.values, raw.values, strict=True):
        assert a == pytest.approx(b)


def test_hourly_rollup_reads_where_the_store_keeps_one() -> None:
    def plan(grain: str, dialect: str, hourly: bool, start: str = "10:20") -> str:
        body = {"metric": "temp", "aggregation": "max", "grain": grain, "splitBy": "device",
                "from": f"2025-03-01T{start}:00Z", "to": "2025-03-02T13:40:00Z"}  # fmt: skip
        split = planner.ResolvedSplit("device")
        query = parse_explorer_query(body)
        return planner.plan_explorer_query(
            query, APP, planner.ResolvedScope(), split, dialect, hourly
        ).sql

    minutes = plan("PT1M", "postgres", True)  # totals: whole hours + the edge minutes
    assert minutes.count("FROM telemetry_1h") == 1 and minutes.count("FROM telemetry_1m") == 3
    aligned = plan("PT1M", "postgres", True, start="10:00")  # no partial hour at the start
    assert aligned.count("FROM telemetry_1m") == 2
    hours = plan("PT2H", "postgres", True)
    assert "telemetry_1m" not in hours and "telemetry_1h" in hours
    assert "telemetry_1h" not in plan("PT1H", "duckdb", False)
