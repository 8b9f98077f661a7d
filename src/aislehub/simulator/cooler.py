"""A simulated beverage cooler: the profile is data, the physics one small time step.

Thermal model (Newton's law of cooling, integrated in steps of at most one second)::

    dT/dt = (T_ambient - T) / tau_cabinet              heat leaking in through the walls
          + (T_ambient - T) / tau_door   if door open  warm air rushing in: the spike
          - compressor_cooling           if compressor on
          + defrost_heating              while defrosting

The compressor is a thermostat with hysteresis around the setpoint; the condenser follows
ambient plus a lift while the compressor runs, with a first-order lag. Door openings are
a Poisson process; a small share of them are left open for minutes (the fault the rules
engine should catch). Every random draw comes from one seeded ``random.Random``, and time
only moves when :meth:`Cooler.advance` is called with a new ``now``: tests drive it with a
fake clock and get the same run every time.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from aislehub.simulator import cooler_commands as commands
from aislehub.simulator.cooler_commands import CommandResult

MAX_STEP_S = 1.0  # Euler step; tau_door (90 s) is the fastest dynamic, so 1 s is stable


@dataclass(frozen=True, slots=True)
class Outlet:
    """A shop where coolers stand; coordinates in degrees, altitude in metres."""

    name: str
    lat: float
    lon: float
    alt: float


OUTLETS: tuple[Outlet, ...] = (
    Outlet("Pike Place Corner Store", 47.6097, -122.3422, 45.0),
    Outlet("Capitol Hill Grocery", 47.6235, -122.3194, 110.0),
    Outlet("Ballard Market", 47.6687, -122.3843, 20.0),
    Outlet("Fremont Deli", 47.6510, -122.3505, 35.0),
    Outlet("Queen Anne Express", 47.6372, -122.3571, 130.0),
)


@dataclass(frozen=True, slots=True)
class CoolerProfile:
    """Everything that makes a cooler model behave as it does; no behaviour lives here."""

    model_id: str = "dtmi:aislehub:retail:BeverageCooler;1"
    firmware_version: str = "2.3.1"
    setpoint_c: float = 4.0
    setpoint_min_c: float = -5.0
    setpoint_max_c: float = 15.0
    ambient_c: float = 22.0
    start_c: float = 4.0  # cabinet temperature at power-on
    hysteresis_c: float = 1.5  # thermostat band, centred on the setpoint
    tau_cabinet_s: float = 7200.0  # insulation: two hours to lose ~63 % of the difference
    tau_door_s: float = 90.0  # door open: warm air in within a couple of minutes
    cooling_c_per_s: float = 0.012  # compressor pull-down, net of the load
    defrost_heating_c_per_s: float = 0.002
    condenser_lift_c: float = 18.0  # above ambient while the compressor runs
    tau_condenser_s: float = 60.0
    base_power_w: float = 45.0  # fans, lights, controller
    compressor_power_w: float = 320.0
    defrost_power_w: float = 250.0
    door_openings_per_hour: float = 12.0
    door_open_mean_s: float = 12.0
    door_left_open_share: float = 0.02  # openings that last minutes (a fault)
    door_left_open_s: tuple[float, float] = (300.0, 900.0)
    temperature_noise_c: float = 0.05
    power_noise_w: float = 3.0
    gps_jitter_deg: float = 0.00002


@dataclass(frozen=True, slots=True)
class DoorEvent:
    """The door opened (``open``) or closed at simulated time ``at``."""

    at: float
    open: bool


@dataclass(slots=True)
class CoolerState:
    temperature_c: float
    condenser_c: float
    setpoint_c: float
    compressor_on: bool = False
    door_open: bool = False
    door_closes_at: float = 0.0
    defrost_until: float = 0.0
    booted_at: float = 0.0
    events: list[DoorEvent] = field(default_factory=list)


class Cooler:
    """One cooler's physics and device behaviour; time moves only through :meth:`advance`."""

    def __init__(self, profile: CoolerProfile, outlet: Outlet, seed: int, start: float = 0.0):
        self.profile = profile
        self.outlet = outlet
        self.rng = random.Random(seed)
        self.now = start
        self.state = CoolerState(
            profile.start_c, profile.ambient_c, profile.setpoint_c, booted_at=start
        )

    # -- time ------------------------------------------------------------------------------

    def advance(self, now: float) -> list[DoorEvent]:
        """Integrate up to ``now``; returns the door events that happened since last time."""
        while self.now < now:
            dt = min(MAX_STEP_S, now - self.now)
            self.now += dt
            self._step(dt)
        events, self.state.events = self.state.events, []
        return events

    def _step(self, dt: float) -> None:
        self._step_door(dt)
        self._step_thermostat()
        self._step_thermal(dt)

    def _step_door(self, dt: float) -> None:
        s, p = self.state, self.profile
        if s.door_open and self.now >= s.door_closes_at:
            self._set_door(False)
        elif not s.door_open and self.rng.random() < p.door_openings_per_hour / 3600.0 * dt:
            self.open_door(self._open_duration())

    def _open_duration(self) -> float:
        p = self.profile
        if self.rng.random() < p.door_left_open_share:
            return self.rng.uniform(*p.door_left_open_s)
        return max(2.0, self.rng.expovariate(1.0 / p.door_open_mean_s))

    def _step_thermostat(self) -> None:
        s, half_band = self.state, self.profile.hysteresis_c / 2
        if self.defrosting:
            s.compressor_on = False
        elif s.temperature_c > s.setpoint_c + half_band:
            s.compressor_on = True
        elif s.temperature_c < s.setpoint_c - half_band:
            s.compressor_on = False

    def _step_thermal(self, dt: float) -> None:
        s, p = self.state, self.profile
        gap = p.ambient_c - s.temperature_c
        rate = gap / p.tau_cabinet_s + (gap / p.tau_door_s if s.door_open else 0.0)
        rate -= p.cooling_c_per_s if s.compressor_on else 0.0
        rate += p.defrost_heating_c_per_s if self.defrosting else 0.0
        s.temperature_c += rate * dt
        target = p.ambient_c + (p.condenser_lift_c if s.compressor_on else 1.0)
        s.condenser_c += (target - s.condenser_c) * (1 - math.exp(-dt / p.tau_condenser_s))

    # -- actions ---------------------------------------------------------------------------

    def open_door(self, duration_s: float) -> None:
        """Open the door now for ``duration_s`` (the random process and tests use this)."""
        self.state.door_closes_at = self.now + duration_s
        if not self.state.door_open:
            self._set_door(True)

    def _set_door(self, is_open: bool) -> None:
        self.state.door_open = is_open
        self.state.events.append(DoorEvent(self.now, is_open))

    @property
    def defrosting(self) -> bool:
        return self.now < self.state.defrost_until

    # -- what the device reports -----------------------------------------------------------

    def telemetry(self) -> dict[str, Any]:
        """One reading of every sensor, with sensor noise."""
        s, p, g = self.state, self.profile, self.rng.gauss
        power = p.base_power_w + (p.compressor_power_w if s.compressor_on else 0.0)
        power += p.defrost_power_w if self.defrosting else 0.0
        jitter = p.gps_jitter_deg
        return {
            "temperature": round(s.temperature_c + g(0, p.temperature_noise_c), 2),
            "condenserTemperature": round(s.condenser_c + g(0, p.temperature_noise_c), 2),
            "powerW": round(max(0.0, power + g(0, p.power_noise_w)), 1),
            "compressorOn": s.compressor_on,
            "location": {
                "lat": round(self.outlet.lat + g(0, jitter), 6),
                "lon": round(self.outlet.lon + g(0, jitter), 6),
                "alt": self.outlet.alt,
            },
        }

    def reported(self) -> dict[str, Any]:
        """Read-only properties, reported once after connecting."""
        return {
            "firmwareVersion": self.profile.firmware_version,
            "assignedOutlet": self.outlet.name,
        }

    def apply_desired(self, desired: dict[str, Any]) -> dict[str, Any]:
        """Apply writable properties from a desired patch (or the whole desired section);
        returns the reported acknowledgements (contract §2.5) to send back."""
        if "targetTemperature" not in desired:
            return {}
        version = desired.get("$version")
        result = commands.set_target_temperature(self, desired["targetTemperature"])
        return {"targetTemperature": {**result, "av": version}}

    def command(self, name: str, payload: Any) -> CommandResult:
        """Run a direct method at the current simulated time: ``(status, JSON payload)``."""
        return commands.run(self, name, payload)
