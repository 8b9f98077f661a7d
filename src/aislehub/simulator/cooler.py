"""A simulated beverage cooler: the profile is data, the physics one small time step.

Thermal model (Newton's law of cooling, integrated exactly over each step, so steps of
tens of seconds stay stable when a simulated month must run in seconds)::

    dT/dt = (T_ambient - T) / tau_cabinet              heat leaking in through the walls
          + (T_ambient - T) / tau_door   if door open  warm air rushing in: the spike
          - capacity * compressor_cooling  if on       capacity < 1 as the compressor wears
          + defrost_heating              while defrosting

The compressor is a thermostat with hysteresis around the setpoint; the condenser follows
ambient plus a lift while the compressor runs (first-order lag). Ambient swings through
the day (warmest mid-afternoon) and from day to day. Faults (``FaultRecord``):

* ``compressorDegrading`` — wear rises 0 → 1 from the fault's start to its end: cooling
  capacity falls to 15 % and the condenser lift grows by 60 % (a fouled condenser and a
  tired compressor run hot and long). The duty cycle climbs first; the cabinet warms only
  once capacity no longer covers the heat leak — which is why drift is the early signal.
* ``doorLeftOpen`` — the door stays open for the fault's duration.
* ``coolerMoved`` — from the start the location is ``distanceMeters`` from the outlet.
* ``gatewayOffline`` — the device binding stops sending (the cooler keeps running).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aislehub.simulator import cooler_commands as commands
from aislehub.simulator.cooler_commands import CommandResult
from aislehub.simulator.physics.base import Message, ModelBase, offset_point, pick, relax
from aislehub.simulator.profile import DevicePlan, FaultRecord

DAY_S = 86400.0
WEAR_CAPACITY_LOSS = 0.85
WEAR_LIFT_GAIN = 0.6


@dataclass(frozen=True, slots=True)
class Outlet:
    """A shop where coolers stand; coordinates in degrees, altitude in metres."""

    name: str
    lat: float
    lon: float
    alt: float = 0.0


OUTLETS: tuple[Outlet, ...] = (
    Outlet("Soweto Tavern", -26.2389, 27.9086, 1600.0),
    Outlet("Sandton City", -26.1076, 28.0567, 1660.0),
    Outlet("Rosebank Mall", -26.1456, 28.0437, 1690.0),
    Outlet("Braamfontein Corner", -26.1929, 28.0340, 1750.0),
    Outlet("Maboneng Market", -26.2044, 28.0593, 1720.0),
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
    ambient_daily_swing_c: float = 0.0  # half the day's range; warmest at 15:00 local
    ambient_day_to_day_c: float = 0.0  # standard deviation of a day's offset
    utc_offset_h: float = 2.0  # South Africa
    start_c: float = 4.0  # cabinet temperature at power-on
    hysteresis_c: float = 1.5  # thermostat band, centred on the setpoint
    tau_cabinet_s: float = 7200.0  # insulation: two hours to lose ~63 % of the difference
    tau_door_s: float = 600.0  # door open: warm air in, damped by the stock's thermal mass
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
    step_s: float = 1.0  # longest integration step

    @classmethod
    def from_physics(cls, physics: Mapping[str, Any], rng: Any) -> CoolerProfile:
        """A profile from ``simulator.json``'s physics; ``[low, high]`` pairs drawn once."""
        base = cls()
        names = {
            "setpoint": "setpoint_c",
            "ambient": "ambient_c",
            "ambientDailySwing": "ambient_daily_swing_c",
            "ambientDayToDay": "ambient_day_to_day_c",
            "tauCabinetSeconds": "tau_cabinet_s",
            "tauDoorSeconds": "tau_door_s",
            "coolingPerSecond": "cooling_c_per_s",
            "condenserLift": "condenser_lift_c",
            "doorOpeningsPerHour": "door_openings_per_hour",
            "doorOpenMeanSeconds": "door_open_mean_s",
            "doorLeftOpenShare": "door_left_open_share",
            "stepSeconds": "step_s",
        }
        values: dict[str, Any] = {
            attr: pick(rng, physics[key], getattr(base, attr))
            for key, attr in names.items()
            if key in physics
        }
        if "firmwareVersion" in physics:
            values["firmware_version"] = str(physics["firmwareVersion"])
        if "setpoint_c" in values:
            values["start_c"] = values["setpoint_c"]
        return dataclasses.replace(base, **values)


@dataclass(slots=True)
class CoolerState:
    temperature_c: float
    condenser_c: float
    setpoint_c: float
    compressor_on: bool = False
    door_open: bool = False
    door_opened_at: float = 0.0
    door_closes_at: float = 0.0
    defrost_until: float = 0.0
    booted_at: float = 0.0
    on_seconds: float = 0.0  # compressor time since the last reading
    seconds: float = 0.0
    openings: int = 0


class Cooler(ModelBase):
    """One cooler's physics and device behaviour; time moves only through :meth:`advance`."""

    def __init__(
        self,
        profile: CoolerProfile,
        outlet: Outlet,
        seed: int,
        start: float = 0.0,
        faults: Sequence[FaultRecord] = (),
        plan: DevicePlan | None = None,
    ) -> None:
        super().__init__(plan or DevicePlan(f"cooler-{seed}", 0, seed), faults, start)
        self.profile = profile
        self.outlet = outlet
        self.max_step_s = profile.step_s
        self.installed_at = start - self.rng.uniform(1, 60) * DAY_S
        self.delivered_at = self.installed_at - self.rng.uniform(2, 240) * 3600
        self._day_offsets: dict[int, float] = {}
        self._triggered: set[FaultRecord] = set()
        self._moved_bearing = self.rng.uniform(0, 360)
        ambient = self.ambient_c()
        self.state = CoolerState(profile.start_c, ambient, profile.setpoint_c, booted_at=start)

    @classmethod
    def from_plan(
        cls,
        physics: Mapping[str, Any],
        plan: DevicePlan,
        faults: Sequence[FaultRecord],
        start: float,
    ) -> Cooler:
        profile = CoolerProfile.from_physics(physics, random.Random(plan.seed ^ 0x5EED))
        site = plan.site
        outlet = Outlet(site.name, site.lat, site.lon) if site else OUTLETS[0]
        return cls(profile, outlet, plan.seed, start, faults, plan)

    # -- environment -----------------------------------------------------------------------

    def ambient_c(self, at: float | None = None) -> float:
        p, t = self.profile, self.now if at is None else at
        local_h = (t / 3600.0 + p.utc_offset_h) % 24.0
        daily = p.ambient_daily_swing_c * math.sin(2 * math.pi * (local_h - 9.0) / 24.0)
        return p.ambient_c + daily + self._day_offset(int((t + p.utc_offset_h * 3600) // DAY_S))

    def _day_offset(self, day: int) -> float:
        if day not in self._day_offsets:
            sigma = self.profile.ambient_day_to_day_c
            self._day_offsets[day] = random.Random(self.plan.seed * 7919 + day).gauss(0, sigma)
        return self._day_offsets[day]

    @property
    def wear(self) -> float:
        return self.fault_progress("compressorDegrading")

    # -- time ------------------------------------------------------------------------------

    def advance(self, now: float) -> list[Message]:
        """Integrate up to ``now`` in steps that end where the door closes (so coarse steps
        do not keep the door open longer than it was)."""
        s = self.state
        while self.now < now:
            dt = min(self.max_step_s, now - self.now)
            if s.door_open and s.door_closes_at > self.now:
                dt = min(dt, s.door_closes_at - self.now)
            self.now += dt
            self.step(dt)
        events, self._events = self._events, []
        return events

    def step(self, dt: float) -> None:
        """One step of ``dt`` ending at ``self.now``: the state at its start held for its
        length, then the door and thermostat decide what the next step holds."""
        self._step_thermal(dt)
        self._step_door(dt)
        self._step_thermostat()

    def _step_door(self, dt: float) -> None:
        s, p = self.state, self.profile
        left_open = self.fault("doorLeftOpen")
        if left_open is not None and left_open not in self._triggered:
            self._triggered.add(left_open)
            end = left_open.end if left_open.end is not None else self.now + 600
            self.open_door(end - self.now)
        elif s.door_open and self.now >= s.door_closes_at:
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
        ambient, wear = self.ambient_c(), self.wear
        inv_tau = 1.0 / p.tau_cabinet_s + (1.0 / p.tau_door_s if s.door_open else 0.0)
        heat = p.defrost_heating_c_per_s if self.defrosting else 0.0
        if s.compressor_on:
            heat -= p.cooling_c_per_s * (1.0 - WEAR_CAPACITY_LOSS * wear)
        s.temperature_c = relax(s.temperature_c, ambient + heat / inv_tau, dt, 1.0 / inv_tau)
        lift = p.condenser_lift_c * (1.0 + WEAR_LIFT_GAIN * wear) if s.compressor_on else 1.0
        s.condenser_c = relax(s.condenser_c, ambient + lift, dt, p.tau_condenser_s)
        s.seconds += dt
        s.on_seconds += dt if s.compressor_on else 0.0

    # -- actions ---------------------------------------------------------------------------

    def open_door(self, duration_s: float) -> None:
        """Open the door now for ``duration_s`` (the random process and tests use this)."""
        self.state.door_closes_at = self.now + duration_s
        if not self.state.door_open:
            self.state.door_opened_at = self.now
            self.state.openings += 1
            self._set_door(True)

    def _set_door(self, is_open: bool) -> None:
        self.state.door_open = is_open
        self.emit({"doorOpen": is_open})

    @property
    def defrosting(self) -> bool:
        return self.now < self.state.defrost_until

    # -- what the device reports -----------------------------------------------------------

    def location(self) -> tuple[float, float]:
        moved = self.fault("coolerMoved")
        if moved is None:
            return self.outlet.lat, self.outlet.lon
        metres = float(moved.params.get("distanceMeters", 800))
        return offset_point(self.outlet.lat, self.outlet.lon, metres, self._moved_bearing)

    def reading(self) -> dict[str, Any]:
        """One reading of every sensor, with sensor noise; resets the interval counters."""
        s, p, g = self.state, self.profile, self.rng.gauss
        power = p.base_power_w + (p.compressor_power_w if s.compressor_on else 0.0)
        power += p.defrost_power_w if self.defrosting else 0.0
        lat, lon = self.location()
        duty = 100.0 * s.on_seconds / s.seconds if s.seconds else 0.0
        openings, s.on_seconds, s.seconds, s.openings = s.openings, 0.0, 0.0, 0
        return {
            "temperature": round(s.temperature_c + g(0, p.temperature_noise_c), 2),
            "condenserTemperature": round(s.condenser_c + g(0, p.temperature_noise_c), 2),
            "ambientTemperature": round(self.ambient_c() + g(0, 0.1), 2),
            "dutyCycle": round(duty, 1),
            "powerW": round(max(0.0, power + g(0, p.power_noise_w)), 1),
            "compressorOn": s.compressor_on,
            "doorOpenSeconds": round(self.now - s.door_opened_at) if s.door_open else 0,
            "doorOpenings": openings,
            "location": {
                "lat": round(lat + g(0, p.gps_jitter_deg), 6),
                "lon": round(lon + g(0, p.gps_jitter_deg), 6),
                "alt": self.outlet.alt,
            },
        }

    def telemetry(self) -> list[Message]:
        return [(None, self.reading())]

    def reported(self) -> dict[str, Any]:
        """Read-only properties, reported once after connecting."""
        return {
            "firmwareVersion": self.profile.firmware_version,
            "installedAt": _iso(self.installed_at),
        }

    def cloud_properties(self) -> dict[str, Any]:
        return {
            "outlet": self.outlet.name,
            "outletLocation": {"lat": self.outlet.lat, "lon": self.outlet.lon},
            "deliveredAt": _iso(self.delivered_at),
        }

    def apply_desired(self, desired: Mapping[str, Any]) -> dict[str, Any]:
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


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
