"""A condition tracker travelling with a shipment along a route, back and forth.

Position is interpolated between the route's waypoints (equal time per leg); shock is the
peak of the handling bumps in the interval (Poisson ``bumpsPerHour``, each uniform in
``handlingShock`` g); the reefer holds ``reeferSetpoint`` within its band; light is dark
while the container is closed. Faults: ``shipmentDropped`` (one 12-25 g shock and a
tipped box at the start), ``containerOpened`` (light for the duration),
``temperatureExcursion`` (the reefer fails: temperature drifts toward ambient),
``gatewayOffline``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aislehub.simulator.physics.base import (
    CommandResult,
    Message,
    ModelBase,
    distance_m,
    pick,
    relax,
)
from aislehub.simulator.profile import DevicePlan, FaultRecord


class Tracker(ModelBase):
    writable = {"reportingIntervalSeconds": (5, 86400)}

    def __init__(
        self,
        physics: Mapping[str, Any],
        plan: DevicePlan,
        faults: Sequence[FaultRecord],
        start: float,
    ) -> None:
        super().__init__(plan, faults, start)
        self.max_step_s = 10.0
        self.physics = physics
        route = plan.route
        self.waypoints = route.waypoints if route else ((0.0, 0.0), (0.0, 0.1))
        self.trip_s = route.duration_s if route else 3600.0
        self.departed = start - self.rng.uniform(0, self.trip_s)  # trackers are mid-route
        self.setpoint = float(physics.get("reeferSetpoint", 4.0))
        self.temperature = self.setpoint + self.gauss(0.3)
        self.battery = self.rng.uniform(60, 100)
        self.peak_shock = 0.0
        self.tilt = self.rng.uniform(0, 3)
        self._handled: set[FaultRecord] = set()
        self._last_position, self._last_at = self.position(), start
        self.commands = {"locate": self._locate}

    def position(self) -> tuple[float, float]:
        legs = len(self.waypoints) - 1
        phase = ((self.now - self.departed) / self.trip_s) % 2.0
        progress = phase if phase <= 1.0 else 2.0 - phase  # there and back again
        leg = min(int(progress * legs), legs - 1)
        frac = progress * legs - leg
        (la1, lo1), (la2, lo2) = self.waypoints[leg], self.waypoints[leg + 1]
        return la1 + (la2 - la1) * frac, lo1 + (lo2 - lo1) * frac

    def step(self, dt: float) -> None:
        p = self.physics
        if self.rng.random() < float(p.get("bumpsPerHour", 6)) / 3600 * dt:
            self.peak_shock = max(self.peak_shock, pick(self.rng, p.get("handlingShock"), 1.0))
        dropped = next(
            (f for f in self.faults if f.kind == "shipmentDropped" and f.start <= self.now), None
        )
        if dropped is not None and dropped not in self._handled:
            self._handled.add(dropped)
            self.peak_shock = max(self.peak_shock, self.rng.uniform(12, 25))
            self.tilt = self.rng.uniform(35, 80)
        excursion = self.fault("temperatureExcursion") is not None
        target = 24.0 if excursion else self.setpoint
        self.temperature = relax(self.temperature, target, dt, 1200.0 if excursion else 300.0)
        self.battery = max(0.0, self.battery - float(p.get("batteryDrainPerHour", 0.4)) * dt / 3600)

    def telemetry(self) -> list[Message]:
        lat, lon = self.position()
        hours = max(self.now - self._last_at, 1.0) / 3600.0
        speed = distance_m(self._last_position, (lat, lon)) / 1000.0 / hours
        self._last_position, self._last_at = (lat, lon), self.now
        opened = self.fault("containerOpened") is not None
        reading = {
            "shock": round(max(self.peak_shock, abs(self.gauss(0.05)) + 0.1), 2),
            "tilt": round(self.tilt + self.gauss(0.3), 1),
            "light": round(self.rng.uniform(250, 900) if opened else abs(self.gauss(0.3)), 1),
            "temperature": round(self.temperature + self.gauss(0.15), 2),
            "humidity": round(float(self.physics.get("humidity", 80)) + self.gauss(2.0), 1),
            "batteryLevel": round(self.battery, 1),
            "location": {"lat": round(lat, 6), "lon": round(lon, 6)},
            "speed": round(speed, 2),
        }
        self.peak_shock = 0.0
        return [(None, reading)]

    def reported(self) -> dict[str, Any]:
        return {"firmwareVersion": "3.0.4"}

    def cloud_properties(self) -> dict[str, Any]:
        route = self.plan.route
        last = self.waypoints[-1]
        return {
            "shipmentId": f"SHP-{self.plan.seed % 1_000_000:06d}",
            "route": route.name if route else "",
            "sealed": True,
            "destination": {"lat": last[0], "lon": last[1]},
        }

    def _locate(self, payload: Any) -> CommandResult:
        lat, lon = self.position()
        return 200, {"lat": round(lat, 6), "lon": round(lon, 6)}
