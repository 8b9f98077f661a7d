"""The cooler profile's physics and behaviour, driven by a fake clock: pure and seeded."""

from __future__ import annotations

import dataclasses

from aislehub.simulator.cooler import OUTLETS, Cooler, CoolerProfile

QUIET = CoolerProfile(door_openings_per_hour=0.0)  # no random door openings


def run(cooler: Cooler, seconds: float, step: float = 5.0) -> list[dict[str, object]]:
    readings = []
    t, end = cooler.now, cooler.now + seconds
    while t < end:
        t += step
        cooler.advance(t)
        readings.append(cooler.reading())
    return readings


def test_same_seed_same_run_other_seed_other_run() -> None:
    def trace(seed: int) -> list[dict[str, object]]:
        return run(Cooler(CoolerProfile(door_openings_per_hour=120), OUTLETS[0], seed), 1800)

    assert trace(7) == trace(7)
    assert trace(7) != trace(8)


def test_temperature_drifts_to_setpoint_and_cycles_compressor() -> None:
    profile = dataclasses.replace(QUIET, start_c=22.0)
    cooler = Cooler(profile, OUTLETS[0], seed=1)
    readings = run(cooler, 4 * 3600)
    last_hour = readings[-720:]
    temperatures = [float(r["temperature"]) for r in last_hour]  # type: ignore[arg-type]
    band = profile.hysteresis_c / 2 + 0.3
    assert all(abs(t - profile.setpoint_c) <= band for t in temperatures)
    assert {r["compressorOn"] for r in last_hour} == {True, False}
    on = [float(r["powerW"]) for r in last_hour if r["compressorOn"]]  # type: ignore[arg-type]
    assert min(on) > profile.compressor_power_w
    assert float(readings[0]["temperature"]) > 20  # type: ignore[arg-type]


def test_door_opening_spikes_temperature_and_reports_events() -> None:
    cooler = Cooler(QUIET, OUTLETS[0], seed=3, start=1000.0)
    cooler.advance(1000.0 + 3600)
    before = cooler.state.temperature_c
    cooler.open_door(60.0)
    events = cooler.advance(cooler.now + 120)
    assert events == [(None, {"doorOpen": True}), (None, {"doorOpen": False})]
    assert cooler.state.temperature_c - before > 1.0  # a minute of warm air
    cooler.advance(cooler.now + 1800)
    assert abs(cooler.state.temperature_c - QUIET.setpoint_c) < 1.5


def test_random_door_openings_happen_at_the_profile_rate() -> None:
    cooler = Cooler(CoolerProfile(door_openings_per_hour=30), OUTLETS[1], seed=5)
    opens = [e for _, e in cooler.advance(10 * 3600) if e["doorOpen"]]
    assert 200 < len(opens) < 400  # Poisson, mean ~290 given time spent open


def test_location_stays_near_the_outlet() -> None:
    outlet = OUTLETS[2]
    cooler = Cooler(QUIET, outlet, seed=1)
    location = cooler.reading()["location"]
    assert abs(location["lat"] - outlet.lat) < 0.001
    assert abs(location["lon"] - outlet.lon) < 0.001
    assert location["alt"] == outlet.alt
    assert cooler.reported()["firmwareVersion"] == QUIET.firmware_version
    assert cooler.cloud_properties()["outlet"] == outlet.name


def test_target_temperature_accepted_and_acknowledged() -> None:
    cooler = Cooler(QUIET, OUTLETS[0], seed=1)
    ack = cooler.apply_desired({"targetTemperature": 8, "$version": 3})
    assert ack == {"targetTemperature": {"value": 8, "ac": 200, "av": 3, "ad": "applied"}}
    assert cooler.state.setpoint_c == 8.0
    cooler.advance(3 * 3600)
    assert abs(cooler.state.temperature_c - 8.0) < 1.5
    assert cooler.apply_desired({"$version": 4, "other": 1}) == {}


def test_target_temperature_out_of_range_or_not_a_number_rejected() -> None:
    cooler = Cooler(QUIET, OUTLETS[0], seed=1)
    for bad in (15.5, -6, "cold", True, None):
        ack = cooler.apply_desired({"targetTemperature": bad, "$version": 5})
        assert ack["targetTemperature"]["ac"] == 400
        assert ack["targetTemperature"]["av"] == 5
        assert ack["targetTemperature"]["value"] == bad
    assert cooler.state.setpoint_c == QUIET.setpoint_c
    for edge in (-5, 15):
        assert cooler.apply_desired({"targetTemperature": edge})["targetTemperature"]["ac"] == 200


def test_reboot_and_defrost_commands() -> None:
    cooler = Cooler(dataclasses.replace(QUIET, start_c=10.0), OUTLETS[0], seed=1)
    cooler.advance(600)
    status, body = cooler.command("reboot", {})
    assert (status, body["status"], body["uptimeSeconds"]) == (200, "rebooting", 600)
    assert cooler.command("defrost", {"durationMinutes": 10}) == (
        200,
        {"status": "defrosting", "durationMinutes": 10},
    )
    assert cooler.command("defrost", None)[0] == 409
    cooler.advance(cooler.now + 60)
    assert cooler.state.compressor_on is False
    assert float(cooler.reading()["powerW"]) > QUIET.defrost_power_w  # type: ignore[arg-type]
    cooler.advance(cooler.now + 600)
    assert cooler.state.compressor_on is True  # defrost over, warm cabinet: cooling again
    assert cooler.command("defrost", {"durationMinutes": 0})[0] == 400
    assert cooler.command("selfDestruct", {})[0] == 404
