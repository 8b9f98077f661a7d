"""A grid robot in a micro-fulfilment centre, and the structure it drives on.

The robot picks at a rate drawn from ``picksPerHour``, drives between random grid cells,
drains its battery and charges below 20 %. Motor temperature follows the hall
temperature plus ``motorRisePerPick`` per pick/hour, with a ``tauMotorSeconds`` lag.
Faults: ``motorWear`` (bearing wear: friction heat rises to +45 °C over the fault's
duration, so the over-temperature rule fires at its end and the drift shows long before),
``robotDown`` (state ``down``, fault ``motorStall``, no picks), ``structureVibration``
(the rail under the robot vibrates: ISO 10816 "unacceptable" above ~0.45 cm/s),
``gatewayOffline``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aislehub.simulator.physics.base import CommandResult, Message, ModelBase, pick, relax
from aislehub.simulator.profile import DevicePlan, FaultRecord

WEAR_HEAT_C = 45.0


class Robot(ModelBase):
    writable = {"maxSpeed": (0.5, 5.0)}

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
        grid = physics.get("gridMetres", [40, 25])
        self.grid = (float(grid[0]), float(grid[1]))
        self.rate = pick(self.rng, physics.get("picksPerHour"), 120.0)
        self.hall = float(physics.get("hallTemperature", 18.0))
        self.motor = self.hall + 20.0
        self.battery = self.rng.uniform(40, 100)
        self.charging = False
        self.x, self.y = self.rng.uniform(0, self.grid[0]), self.rng.uniform(0, self.grid[1])
        self.settings["maxSpeed"] = float(physics.get("speed", 3.0))
        self.commands = {"returnToBase": self._return, "reboot": self._reboot}

    @property
    def state(self) -> str:
        if self.fault("robotDown") is not None:
            return "down"
        return "charging" if self.charging else "picking"

    @property
    def picks_per_hour(self) -> float:
        return self.rate if self.state == "picking" else 0.0

    def hall_c(self) -> float:
        return self.hall + 2.0 * ((self.now / 86400.0) % 1.0 - 0.5)  # a gentle daily ramp

    def step(self, dt: float) -> None:
        p = self.physics
        state = self.state
        if state == "picking":
            self.battery -= 100.0 / (float(p.get("batteryHours", 5)) * 3600) * dt
            reach = self.settings["maxSpeed"] * dt
            self.x = min(self.grid[0], max(0.0, self.x + self.rng.uniform(-reach, reach)))
            self.y = min(self.grid[1], max(0.0, self.y + self.rng.uniform(-reach, reach)))
            self.charging = self.battery < 20
        elif state == "charging":
            self.battery += 100.0 / 3600.0 * dt  # an hour on the charger
            self.charging = self.battery < 95
        rise = float(p.get("motorRisePerPick", 0.2)) * self.picks_per_hour
        target = self.hall_c() + rise + WEAR_HEAT_C * self.fault_progress("motorWear")
        self.motor = relax(self.motor, target, dt, float(p.get("tauMotorSeconds", 600)))

    def telemetry(self) -> list[Message]:
        vibration = 0.12 + abs(self.gauss(0.03))
        if self.fault("structureVibration") is not None:
            vibration += self.rng.uniform(0.4, 0.8)
        state = self.state
        root = {
            "positionX": round(self.x, 2),
            "positionY": round(self.y, 2),
            "motorTemperature": round(self.motor + self.gauss(0.2), 2),
            "ambientTemperature": round(self.hall_c() + self.gauss(0.1), 2),
            "picksPerHour": round(
                max(0.0, self.picks_per_hour + self.gauss(4.0)) if state == "picking" else 0.0, 1
            ),
            "batteryLevel": round(max(0.0, self.battery), 1),
            "state": state,
            "fault": "motorStall" if state == "down" else "none",
        }
        structure = {"vibration": round(vibration, 3), "rackTilt": round(0.2 + self.gauss(0.02), 3)}
        return [(None, root), ("structure", structure)]

    def reported(self) -> dict[str, Any]:
        return {"firmwareVersion": "5.2.0"}

    def cloud_properties(self) -> dict[str, Any]:
        site = self.plan.site
        return {"centre": site.name if site else "", "zone": f"zone-{self.plan.index % 4 + 1}"}

    def _return(self, payload: Any) -> CommandResult:
        self.x, self.y, self.charging = 0.0, 0.0, True
        return 200, {"status": "returning"}

    def _reboot(self, payload: Any) -> CommandResult:
        return 200, {"status": "rebooting"}
