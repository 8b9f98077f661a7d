"""Which features each template's detector watches (declared as data, one tuple each).

* Connected cooler — ``condenserLift``: condenser minus ambient while the compressor
  runs. A worn compressor or a fouled condenser rejects heat at a higher lift long before
  the cabinet warms; subtracting ambient removes the day's and the weather's swing.
  ``dutyCycle`` against ambient: a weakening compressor runs longer for the same load.
* Micro-fulfilment robot — ``motorHeat``: motor minus hall temperature against the pick
  rate (the load): bearing wear heats the motor at any given load, well before the
  over-temperature rule at 70 °C.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aislehub.intelligence.detector import Feature

COOLER = "dtmi:aislehub:retail:Cooler;1"
ROBOT = "dtmi:aislehub:retail:FulfilmentRobot;1"


def _number(reading: Mapping[str, Any], name: str) -> float | None:
    value = reading.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def condenser_lift(r: Mapping[str, Any]) -> float | None:
    if r.get("compressorOn") is not True:
        return None
    condenser, ambient = _number(r, "condenserTemperature"), _number(r, "ambientTemperature")
    return None if condenser is None or ambient is None else condenser - ambient


def motor_heat(r: Mapping[str, Any]) -> float | None:
    if r.get("state") != "picking":
        return None
    motor, hall = _number(r, "motorTemperature"), _number(r, "ambientTemperature")
    return None if motor is None or hall is None else motor - hall


SPECS: dict[str, tuple[Feature, ...]] = {
    COOLER: (
        Feature(
            "condenserLift",
            condenser_lift,
            description="condenser temperature drifting up against ambient: compressor wear",
        ),
        Feature(
            "dutyCycle",
            lambda r: _number(r, "dutyCycle"),
            lambda r: _number(r, "ambientTemperature"),
            "compressor running longer than usual for the ambient temperature",
        ),
    ),
    ROBOT: (
        Feature(
            "motorHeat",
            motor_heat,
            lambda r: _number(r, "picksPerHour"),
            "motor running hotter than usual for its load: bearing wear",
        ),
    ),
}

# The fields a monitor must read for each template (root component).
FIELDS: dict[str, tuple[str, ...]] = {
    COOLER: ("condenserTemperature", "ambientTemperature", "compressorOn", "dutyCycle"),
    ROBOT: ("motorTemperature", "ambientTemperature", "picksPerHour", "state"),
}


def spec_for(template_id: str) -> tuple[Feature, ...]:
    return SPECS.get(template_id, ())
