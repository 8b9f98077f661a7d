"""Injected faults leave the telemetry signature the template's rules look for, on a
compressed clock (``advance`` jumps simulated time) with fixed seeds."""

from __future__ import annotations

from typing import Any

from aislehub.simulator.physics import build_model
from aislehub.simulator.physics.base import distance_m
from aislehub.simulator.profile import (
    FaultRecord,
    load_profile,
    parse_duration,
    plan_devices,
    schedule_faults,
)
from aislehub.templates import load

T0 = 1_767_225_600.0  # 2026-01-01T00:00Z


def model(template: str, faults: list[FaultRecord] | None = None, **physics: Any) -> Any:
    profile = load_profile(load(template).simulator)
    plan = plan_devices(profile, 1, seed=3)[0]
    records = [FaultRecord(plan.device_id, f.kind, f.start, f.end, f.params) for f in faults or []]
    return build_model(profile.model, {**profile.physics, **physics}, plan, records, T0)


def readings(m: Any, seconds: float, every: float, component: str | None = None) -> list[dict]:
    out, t = [], m.now
    while t < T0 + seconds:
        t += every
        m.advance(t)
        out += [p for c, p in m.telemetry() if c == component]
    return out


def fault(kind: str, at: float, duration: float | None = None, **params: Any) -> FaultRecord:
    return FaultRecord("x", kind, T0 + at, None if duration is None else T0 + at + duration, params)


def test_parse_duration_and_schedule_are_seeded() -> None:
    assert parse_duration("PT15M") == 900 and parse_duration("P1DT2H") == 93600
    profile = load_profile(load("connected-cooler").simulator)
    plans = plan_devices(profile, 20, seed=1)
    assert schedule_faults(profile, plans, T0, 5) == schedule_faults(profile, plans, T0, 5)
    kinds = {f.kind for f in schedule_faults(profile, plans, T0, 5)}
    assert {"coolerMoved", "doorLeftOpen", "compressorDegrading", "gatewayOffline"} == kinds


def test_cooler_moved_leaves_the_geofence() -> None:
    m = model("connected-cooler", [fault("coolerMoved", 660, distanceMeters=900)])
    before, after = readings(m, 600, 60)[-1], readings(m, 1200, 60)[-1]
    outlet = (m.outlet.lat, m.outlet.lon)
    assert distance_m(outlet, (before["location"]["lat"], before["location"]["lon"])) < 50
    assert distance_m(outlet, (after["location"]["lat"], after["location"]["lon"])) > 200


def test_door_left_open_exceeds_five_minutes() -> None:
    m = model("connected-cooler", [fault("doorLeftOpen", 300, 600)], doorOpeningsPerHour=0)
    assert max(r["doorOpenSeconds"] for r in readings(m, 1200, 10)) > 300


def test_compressor_degrading_warms_the_cabinet_and_drifts_the_condenser() -> None:
    m = model("connected-cooler", [fault("compressorDegrading", 86400, 4 * 86400)], stepSeconds=30)
    day1 = readings(m, 86400, 300)
    later = readings(m, 5 * 86400 + 3600, 300)
    lift = [r["condenserTemperature"] - r["ambientTemperature"] for r in day1 if r["compressorOn"]]
    worn = [r["condenserTemperature"] - r["ambientTemperature"] for r in later[-60:]]
    assert min(worn) > max(lift)  # the drift
    assert sum(r["temperature"] for r in later[-6:]) / 6 > 8  # the rule's condition


def test_gateway_offline_marks_the_model_offline() -> None:
    m = model("smart-inventory", [fault("gatewayOffline", 100, 200)])
    m.advance(T0 + 150)
    assert m.offline
    m.advance(T0 + 400)
    assert not m.offline


def test_shipment_dropped_and_opened() -> None:
    m = model(
        "shipment-monitoring", [fault("shipmentDropped", 60), fault("containerOpened", 300, 120)]
    )
    rs = readings(m, 600, 20)
    assert max(r["shock"] for r in rs) > 8
    assert max(r["light"] for r in rs) > 20
    assert rs[0]["light"] < 20


def test_shipment_temperature_excursion() -> None:
    m = model("shipment-monitoring", [fault("temperatureExcursion", 0, 3600)])
    assert readings(m, 3600, 60)[-1]["temperature"] > 8


def test_display_removed_event_and_compliance() -> None:
    m = model(
        "display-tracking", [fault("displayRemoved", 120)], removalsPerDay=0, arrivalsPerDay=0
    )
    before = m.telemetry()[0][1]["displaysOnFloor"]
    events = m.advance(T0 + 300)
    assert [e for _, e in events if "displayRemoved" in e]
    assert m.telemetry()[0][1]["displaysOnFloor"] == before - 1


def test_robot_motor_wear_overheats_and_robot_down() -> None:
    m = model(
        "micro-fulfilment", [fault("motorWear", 0, 4 * 3600), fault("robotDown", 5 * 3600, 600)]
    )
    rs = readings(m, 4 * 3600, 60)
    assert rs[0]["motorTemperature"] < 70 < rs[-1]["motorTemperature"]
    m.advance(T0 + 5 * 3600 + 60)
    assert m.telemetry()[0][1]["state"] == "down"


def test_store_hvac_failure_and_stray_tags() -> None:
    store = model("in-store-analytics", [fault("hvacFailure", 0, 7200)])
    env = readings(store, 7200, 60, component="environment")
    assert env[-1]["temperature"] > 26
    shelf = model("smart-inventory", [fault("strayTags", 0, 700)])
    assert min(r["unknownTags"] for r in readings(shelf, 600, 30)) > 5
