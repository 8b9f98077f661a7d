"""The planner on both stores' engines, a real DuckDB and a real PostgreSQL: rows inserted
as each store files them, queries as sent, the same answers expected from both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from aislehub.query.iotc_query import parse_query
from aislehub.query.iotc_sql import PropertyPlan, QueryInvalid, TelemetryPlan, plan_query
from tests.query.boiler import BOILER, NOW, OTHER, Telemetry, boiler_model, telemetry_db

MODEL, CLOUD = boiler_model()
H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.fixture(params=["duckdb", "postgres"])
def tel(request: pytest.FixtureRequest) -> Iterator[Telemetry]:
    with telemetry_db(request.param) as t:
        for device in ("b1", "b2", "b3"):
            t.device(device)
        t.device("o1", OTHER)
        t.device("sim", provisioned=False, simulated=True)
        t.device("b1", app_id="app-b")
        yield t


def plan(text: str, dialect: str = "duckdb") -> TelemetryPlan | PropertyPlan:
    return plan_query(parse_query(text), "app-a", MODEL, CLOUD, NOW, dialect)


def run(tel: Telemetry, text: str) -> list[dict[str, Any]]:
    p = plan(text, tel.dialect)
    assert isinstance(p, TelemetryPlan)
    # The API's path: the store renders each result row as its JSON object.
    texts = tel.rows(p.json_sql, list(p.params))
    rows: list[dict[str, Any]] = [json.loads(t[0]) for t in texts]
    return rows


def invalid(text: str) -> QueryInvalid:
    with pytest.raises(QueryInvalid) as info:
        plan(text)
    assert info.value.status == 422
    return info.value


def iso(minutes_ago: float) -> str:
    ts = NOW - timedelta(minutes=minutes_ago)
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- raw rows ------------------------------------------------------------------------------


def test_one_row_per_message_of_the_templates_devices_newest_first(tel: Telemetry) -> None:
    tel.send("b1", NOW - 3 * M, {"temperature": 20.5, "pressure": 1.0})
    tel.send("b2", NOW - 2 * M, {"temperature": 21})
    tel.send("b1", NOW - 1 * M, {"pressure": 1.1})  # no temperature: no row
    tel.send("o1", NOW - 1 * M, {"temperature": 99})  # another template
    tel.send("b1", NOW - 1 * M, {"temperature": 98}, app_id="app-b")  # another app
    tel.send("b1", NOW - 1 * M, {"temperature": 97}, module_id="edge")  # a module
    tel.send("unknown", NOW - 1 * M, {"temperature": 96})  # not in the catalog
    assert run(tel, f"SELECT temperature FROM {BOILER}") == [
        {"$id": "b2", "$ts": iso(2), "temperature": 21.0},
        {"$id": "b1", "$ts": iso(3), "temperature": 20.5},
    ]


def test_several_fields_are_pivoted_by_message(tel: Telemetry) -> None:
    tel.send("b1", NOW - 3 * M, {"temperature": 20, "status": "ok", "location": {"lat": 1}})
    tel.send("b1", NOW - 2 * M, {"status": "hot", "burner": True})
    tel.send("b1", NOW - 1 * M, {"pressure": 2.0})
    rows = run(tel, f"SELECT $ts, temperature, status, location, burner FROM {BOILER}")
    assert rows == [
        {"$id": "b1", "$ts": iso(2), "temperature": None, "status": "hot", "location": None}
        | {"burner": True},
        {"$id": "b1", "$ts": iso(3), "temperature": 20.0, "status": "ok"}
        | {"location": {"lat": 1}, "burner": None},
    ]


def test_component_fields(tel: Telemetry) -> None:
    tel.send("b1", NOW - 2 * M, {"temperature": 50})
    tel.send("b1", NOW - 1 * M, {"temperature": 10}, component="inlet")
    assert run(tel, f"SELECT inlet.temperature FROM {BOILER}") == [
        {"$id": "b1", "$ts": iso(1), "inlet.temperature": 10.0}
    ]
    rows = run(tel, f"SELECT temperature, inlet.temperature AS t_in FROM {BOILER} ORDER BY $ts")
    assert [(r["temperature"], r["t_in"]) for r in rows] == [(50.0, None), (None, 10.0)]


def test_where_comparisons_in_and_types(tel: Telemetry) -> None:
    tel.send("b1", NOW - 4 * M, {"temperature": 10, "status": "ok", "mode": 0, "burner": False})
    tel.send("b2", NOW - 3 * M, {"temperature": 30, "status": "hot", "mode": 2, "burner": True})
    tel.send("b3", NOW - 2 * M, {"temperature": 20, "status": "ok", "mode": 1, "burner": True})

    def ids(where: str) -> list[str]:
        rows = run(tel, f"SELECT temperature FROM {BOILER} WHERE {where} ORDER BY $id")
        return [r["$id"] for r in rows]

    assert ids("temperature > 15") == ["b2", "b3"]
    assert ids("temperature >= 20 AND temperature <> 30") == ["b3"]
    assert ids("status = 'ok'") == ["b1", "b3"]
    assert ids("burner = true") == ["b2", "b3"]
    assert ids("mode IN [0, 2]") == ["b1", "b2"]
    assert ids("$id IN ['b1', 'b3'] OR temperature < 0") == ["b1", "b3"]
    assert ids("($id = 'b1' OR $id = 'b2') AND status != 'ok'") == ["b2"]
    assert ids(f"$ts >= '{iso(3)}'") == ["b2", "b3"]


def test_sql_carries_values_as_parameters(tel: Telemetry) -> None:
    tel.send("b1", NOW - M, {"status": "x'); DROP TABLE telemetry_num; --"})
    evil = "x\\'); DROP TABLE telemetry_num; --"
    p = plan(f"SELECT status FROM {BOILER} WHERE status = '{evil}' AND $id != 'b9'", tel.dialect)
    assert isinstance(p, TelemetryPlan)
    assert "DROP" not in p.sql and "b9" not in p.sql and BOILER not in p.sql
    assert len(run(tel, f"SELECT status FROM {BOILER} WHERE status = '{evil}'")) == 1


def test_system_fields_from_the_catalog(tel: Telemetry) -> None:
    tel.send("b1", NOW - 2 * M, {"temperature": 1})
    tel.send("sim", NOW - 1 * M, {"temperature": 2})
    rows = run(tel, f"SELECT $id, $provisioned, $simulated, temperature FROM {BOILER}")
    assert [(r["$id"], r["$provisioned"], r["$simulated"]) for r in rows] == [
        ("sim", False, True),
        ("b1", True, False),
    ]
    rows = run(tel, f"SELECT temperature FROM {BOILER} WHERE $simulated = true")
    assert [r["$id"] for r in rows] == ["sim"]


def test_top_order_and_aliases(tel: Telemetry) -> None:
    for i, value in enumerate([5, 9, 1, 7]):
        tel.send(f"b{i % 3 + 1}", NOW - (10 - i) * M, {"temperature": value})
    rows = run(tel, f"SELECT TOP 2 temperature AS t FROM {BOILER} WHERE t > 1 ORDER BY t DESC")
    assert [r["t"] for r in rows] == [9.0, 7.0]
    assert set(rows[0]) == {"$id", "$ts", "t"}
    rows = run(tel, f"SELECT TOP 3 $ts AS time, temperature FROM {BOILER} ORDER BY time ASC")
    assert [r["temperature"] for r in rows] == [5.0, 9.0, 1.0]
    assert set(rows[0]) == {"$id", "time", "temperature"}


def test_within_window_duration_and_interval(tel: Telemetry) -> None:
    tel.send("b1", NOW - 3 * H, {"temperature": 1})
    tel.send("b1", NOW - 90 * M, {"temperature": 2})
    tel.send("b1", NOW - 10 * M, {"temperature": 3})

    def values(where: str) -> list[float]:
        return [r["temperature"] for r in run(tel, f"SELECT temperature FROM {BOILER} {where}")]

    assert values("WHERE WITHIN_WINDOW(PT1H)") == [3.0]
    assert values("WHERE WITHIN_WINDOW(PT2H)") == [3.0, 2.0]
    start, end = iso(4 * 60), iso(60)
    assert values(f"WHERE WITHIN_WINDOW('{start}/{end}')") == [2.0, 1.0]
    assert values(f"WHERE WITHIN_WINDOW('{start}/PT2H')") == [1.0]
    assert values("WHERE WITHIN_WINDOW(PT2H) AND WITHIN_WINDOW(PT1H)") == [3.0]
    assert values("WHERE WITHIN_WINDOW(PT1H) OR temperature = 1") == [3.0, 1.0]
    assert values("") == [3.0, 2.0, 1.0]


# -- aggregates -----------------------------------------------------------------------------


def _series(tel: Telemetry) -> None:
    """b1: 10, 20 at 10:05 and 10:35, 30 at 11:10; b2: 40 at 10:20, 50 at 11:50."""
    base = NOW - 2 * H  # 10:00
    for device, minutes, value in [
        ("b1", 5, 10),
        ("b1", 35, 20),
        ("b1", 70, 30),
        ("b2", 20, 40),
        ("b2", 110, 50),
    ]:
        tel.send(device, base + minutes * M, {"temperature": value})


def test_latest_value_per_device(tel: Telemetry) -> None:
    _series(tel)
    assert run(tel, f"SELECT $id, LAST(temperature) FROM {BOILER}") == [
        {"$id": "b1", "last_temperature": 30.0},
        {"$id": "b2", "last_temperature": 50.0},
    ]
    assert run(tel, f"SELECT $id, FIRST(temperature) AS f FROM {BOILER} ORDER BY f DESC") == [
        {"$id": "b2", "f": 40.0},
        {"$id": "b1", "f": 10.0},
    ]


def test_aggregates_over_all_devices(tel: Telemetry) -> None:
    _series(tel)
    rows = run(
        tel,
        f"SELECT AVG(temperature), MIN(temperature), MAX(temperature), SUM(temperature), "
        f"COUNT(temperature), FIRST(temperature), LAST(temperature) FROM {BOILER}",
    )
    assert rows == [
        {
            "avg_temperature": 30.0,
            "min_temperature": 10.0,
            "max_temperature": 50.0,
            "sum_temperature": 150.0,
            "count_temperature": 5,
            "first_temperature": 10.0,
            "last_temperature": 50.0,
        }
    ]


def test_windowed_average_per_device(tel: Telemetry) -> None:
    _series(tel)
    rows = run(
        tel,
        f"SELECT $id, AVG(temperature) FROM {BOILER} WHERE WITHIN_WINDOW(P1D) "
        "GROUP BY WINDOW(PT1H) ORDER BY $ts ASC, $id",
    )
    assert rows == [
        {"$ts": "2024-05-01T10:00:00.000Z", "$id": "b1", "avg_temperature": 15.0},
        {"$ts": "2024-05-01T10:00:00.000Z", "$id": "b2", "avg_temperature": 40.0},
        {"$ts": "2024-05-01T11:00:00.000Z", "$id": "b1", "avg_temperature": 30.0},
        {"$ts": "2024-05-01T11:00:00.000Z", "$id": "b2", "avg_temperature": 50.0},
    ]
    # the documented example: windows newest first by default, $ts carried without asking
    rows = run(
        tel,
        f"SELECT AVG(temperature), MAX(temperature) FROM {BOILER} WHERE WITHIN_WINDOW(P1D) "
        "AND $id = 'b1' GROUP BY WINDOW(PT30M)",
    )
    assert rows == [
        {"$ts": "2024-05-01T11:00:00.000Z", "avg_temperature": 30.0, "max_temperature": 30.0},
        {"$ts": "2024-05-01T10:30:00.000Z", "avg_temperature": 20.0, "max_temperature": 20.0},
        {"$ts": "2024-05-01T10:00:00.000Z", "avg_temperature": 10.0, "max_temperature": 10.0},
    ]


def test_window_alignment_for_days_and_weeks(tel: Telemetry) -> None:
    _series(tel)
    rows = run(tel, f"SELECT $ts AS day, COUNT(temperature) FROM {BOILER} GROUP BY WINDOW(P1D)")
    assert rows == [{"day": "2024-05-01T00:00:00.000Z", "count_temperature": 5}]
    rows = run(tel, f"SELECT COUNT(temperature) FROM {BOILER} GROUP BY WINDOW(P1W)")
    assert rows == [{"$ts": "2024-04-29T00:00:00.000Z", "count_temperature": 5}]  # a Monday
    rows = run(tel, f"SELECT COUNT(temperature) FROM {BOILER} GROUP BY WINDOW(P1M)")
    assert rows == [{"$ts": "2024-05-01T00:00:00.000Z", "count_temperature": 5}]


def test_top_n_devices_by_max(tel: Telemetry) -> None:
    _series(tel)
    tel.send("b3", NOW - M, {"temperature": 45})
    rows = run(tel, f"SELECT TOP 2 $id, MAX(temperature) AS peak FROM {BOILER} ORDER BY peak DESC")
    assert rows == [{"$id": "b2", "peak": 50.0}, {"$id": "b3", "peak": 45.0}]
    rows = run(tel, f"SELECT TOP 1 $id, MAX(temperature) FROM {BOILER} ORDER BY max_temperature")
    assert rows == [{"$id": "b1", "max_temperature": 30.0}]


def test_aggregate_without_window_covers_the_last_30_days(tel: Telemetry) -> None:
    tel.send("b1", NOW - timedelta(days=31), {"temperature": 100})
    tel.send("b1", NOW - timedelta(days=29), {"temperature": 10})
    assert run(tel, f"SELECT MAX(temperature) FROM {BOILER}") == [{"max_temperature": 10.0}]
    assert run(tel, f"SELECT MAX(temperature) FROM {BOILER} WHERE WITHIN_WINDOW(P40D)") == [
        {"max_temperature": 100.0}
    ]
    windows = run(tel, f"SELECT MAX(temperature) FROM {BOILER} GROUP BY WINDOW(P1D)")
    assert len(windows) == 2  # with windows, the whole history
    assert len(run(tel, f"SELECT temperature FROM {BOILER}")) == 2


def test_aggregates_of_other_kinds_and_filters(tel: Telemetry) -> None:
    tel.send("b1", NOW - 2 * M, {"status": "ok", "mode": 1, "temperature": 10})
    tel.send("b1", NOW - 1 * M, {"status": "hot", "mode": 2, "temperature": 30})
    rows = run(
        tel,
        f"SELECT LAST(status), COUNT(status), AVG(mode) FROM {BOILER} WHERE temperature > 5",
    )
    assert rows == [{"last_status": "hot", "count_status": 2, "avg_mode": 1.5}]
    assert run(tel, f"SELECT COUNT(temperature) FROM {BOILER} WHERE status = 'hot'") == [
        {"count_temperature": 1}
    ]


def test_no_rows(tel: Telemetry) -> None:
    assert run(tel, f"SELECT temperature FROM {BOILER}") == []
    assert run(tel, f"SELECT $id, AVG(temperature) FROM {BOILER}") == []
    assert run(tel, f"SELECT COUNT(temperature) FROM {BOILER}") == [{"count_temperature": 0}]


# -- property queries are planned apart --------------------------------------------------------


def test_property_queries_are_planned_for_the_metadata_store() -> None:
    p = plan(f"SELECT $id, serialNumber, site, inlet.firmware FROM {BOILER} WHERE setpoint > 3")
    assert isinstance(p, PropertyPlan)
    assert p.limit == 1000
    assert {f.role for f in p.fields.values()} == {"system", "property", "cloud"}


# -- 422s ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "at", "words"),
    [
        (f"SELECT humidity FROM {BOILER}", "humidity", "no telemetry or property 'humidity'"),
        (f"SELECT outlet.temperature FROM {BOILER}", "outlet", "no component 'outlet'"),
        (f"SELECT inlet.pressure FROM {BOILER}", "inlet", "component 'inlet' of template"),
        (f"SELECT temperature, serialNumber FROM {BOILER}", "temperature", "either telemetry"),
        (f"SELECT site FROM {BOILER} WHERE temperature > 1", "temperature", "either telemetry"),
        (f"SELECT temperature FROM {BOILER} WHERE site = 'x'", "site", "is a property"),
        (f"SELECT AVG(status) FROM {BOILER}", "status", "AVG needs a numeric"),
        (f"SELECT MAX(location) FROM {BOILER}", "location", "MAX needs a numeric"),
        (f"SELECT AVG($id) FROM {BOILER}", "$id", "aggregates telemetry"),
        (f"SELECT temperature, AVG(pressure) FROM {BOILER}", "temperature", "inside an aggreg"),
        (f"SELECT $ts, AVG(pressure) FROM {BOILER}", "$ts", "window start"),
        (f"SELECT AVG(pressure) FROM {BOILER} ORDER BY $id", "$id", "orders by its select"),
        (f"SELECT MAX(pressure) AS p FROM {BOILER} WHERE p > 1", "p >", "is an aggregate"),
        (f"SELECT temperature FROM {BOILER} WHERE temperature = 'hot'", "temperature =", "number"),
        (f"SELECT temperature FROM {BOILER} WHERE status = 1", "status", "a string, not 1"),
        (f"SELECT temperature FROM {BOILER} WHERE burner = 'yes'", "burner", "a boolean"),
        (f"SELECT temperature FROM {BOILER} WHERE $ts > 5", "$ts", "ISO 8601 time"),
        (f"SELECT temperature FROM {BOILER} WHERE location = 1", "location =", "compared"),
        (f"SELECT $id FROM {BOILER}", "$id", "at least one telemetry"),
        (f"SELECT $id, $ts FROM {BOILER}", "$id", "at least one telemetry"),
        (f"SELECT site FROM {BOILER} WHERE WITHIN_WINDOW(PT1H)", "", "applies to telemetry"),
        (f"SELECT TOP 1001 site FROM {BOILER}", "", "at most 1,000 rows"),
        (f"SELECT site FROM {BOILER} WHERE serialNumber = 3", "serialNumber", "a string"),
        (f"SELECT COUNT(temperature) FROM {BOILER} GROUP BY WINDOW(P1MT1H)", "", "mixes months"),
    ],
)
def test_semantic_errors_are_422_with_positions(text: str, at: str, words: str) -> None:
    err = invalid(text)
    assert words in err.message, err.message
    if at:
        assert err.position == text.index(at) + 1, err.message


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_plans_run_on_an_empty_catalog(dialect: str) -> None:
    with telemetry_db(dialect) as tel:
        tel.send("b1", NOW, {"temperature": 1})
        assert run(tel, f"SELECT temperature FROM {BOILER}") == []


def test_plan_statement_is_valid_for_explain(tel: Telemetry) -> None:
    p = plan(
        f"SELECT $id, AVG(temperature), LAST(status) FROM {BOILER} WHERE WITHIN_WINDOW(P1D) "
        "AND ($simulated = false OR mode IN [1, 2]) GROUP BY WINDOW(PT10M)",
        tel.dialect,
    )
    assert isinstance(p, TelemetryPlan)
    assert tel.rows("EXPLAIN " + p.sql, list(p.params))


def test_both_stores_give_the_same_answers() -> None:
    """Every query of a mixed workload, on the same messages in both stores: the same rows,
    in the same order, value for value."""
    queries = [
        f"SELECT $id, $ts, temperature, status, mode, burner, location FROM {BOILER}",
        f"SELECT TOP 3 temperature AS t, status FROM {BOILER} WHERE status != 'ok' ORDER BY t",
        f"SELECT $id, AVG(temperature), MIN(pressure), LAST(status), FIRST(mode), "
        f"COUNT(burner) FROM {BOILER} WHERE WITHIN_WINDOW(P1D) GROUP BY WINDOW(PT30M)",
        f"SELECT $id, MAX(temperature) AS peak FROM {BOILER} ORDER BY peak DESC, $id",
        f"SELECT COUNT(temperature) FROM {BOILER} GROUP BY WINDOW(P3M)",
        f"SELECT COUNT(temperature) FROM {BOILER} GROUP BY WINDOW(P1W)",
        f"SELECT status, temperature FROM {BOILER} WHERE burner = true OR mode IN [0, 2] "
        "ORDER BY status DESC, $ts",
        f"SELECT $provisioned, $simulated, AVG(temperature) FROM {BOILER} WHERE "
        f"WITHIN_WINDOW('{(NOW - 5 * H).isoformat()}/PT4H')",
    ]
    answers: dict[str, list[list[dict[str, Any]]]] = {}
    for dialect in ("duckdb", "postgres"):
        with telemetry_db(dialect) as tel:
            for device in ("b1", "b2", "B3", "b-4", "sim"):
                tel.device(device, simulated=device == "sim")
            for i in range(40):
                device = ("b1", "b2", "B3", "b-4", "sim")[i % 5]
                fields: dict[str, Any] = {"temperature": (i * 7919) % 61 / 2, "mode": i % 3}
                if i % 4:
                    fields |= {"status": ("ok", "hot", "cold", "Ok")[i % 4], "burner": i % 3 > 0}
                if i % 7 == 0:
                    fields |= {"pressure": i / 10, "location": {"lat": i, "lon": -i}}
                tel.send(device, NOW - i * 11 * M, fields)
            answers[dialect] = [run(tel, q) for q in queries]
    for query, duck, pg in zip(queries, answers["duckdb"], answers["postgres"], strict=True):
        assert duck, query
        assert pg == duck, query
