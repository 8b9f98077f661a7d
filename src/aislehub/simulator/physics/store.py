"""A store's sensor hub: door counters, three checkout lanes and the store's climate.

Occupancy follows a bell over opening hours (local time) peaking mid-afternoon at
``peakOccupancy``; each open lane's queue is Poisson with a mean proportional to
occupancy over the open lanes, the wait time is the queue times
``serviceSecondsPerCustomer``. Temperature settles at the HVAC setpoint plus body heat;
CO₂ rises ``co2PerPerson`` ppm per person (default 6) above 420 ppm outdoors. Faults:
``hvacFailure`` (the store drifts toward the outdoor temperature plus body heat),
``gatewayOffline``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from aislehub.simulator.physics.base import CommandResult, Message, ModelBase, pick, relax
from aislehub.simulator.profile import DevicePlan, FaultRecord

UTC_OFFSET_H = 2.0


class StoreHub(ModelBase):
    writable = {"capacity": (1, 10_000)}

    def __init__(
        self,
        physics: Mapping[str, Any],
        plan: DevicePlan,
        faults: Sequence[FaultRecord],
        start: float,
    ) -> None:
        super().__init__(plan, faults, start)
        self.max_step_s = 30.0
        self.physics = physics
        self.peak = pick(self.rng, physics.get("peakOccupancy"), 100.0)
        self.settings["capacity"] = float(physics.get("capacity", 200))
        self.temperature = float(physics.get("hvacSetpoint", 22.0))
        self.occupancy = self._expected()
        self.entries = 0.0
        self.commands = {"resetCounters": self._reset}

    def _expected(self) -> float:
        p = self.physics
        hour = (self.now / 3600.0 + UTC_OFFSET_H) % 24.0
        opens, closes = float(p.get("openHour", 8)), float(p.get("closeHour", 21))
        if not opens <= hour < closes:
            return 0.0
        middle, width = (opens + closes) / 2 + 1.5, (closes - opens) / 4
        return self.peak * math.exp(-(((hour - middle) / width) ** 2))

    def step(self, dt: float) -> None:
        before = self.occupancy
        self.occupancy = max(0.0, relax(self.occupancy, self._expected(), dt, 600.0))
        self.entries += max(0.0, self.occupancy - before) + self.occupancy * dt / 1800.0
        p = self.physics
        failed = self.fault("hvacFailure") is not None
        base = (
            float(p.get("outdoorTemperature", 27.0)) if failed else float(p.get("hvacSetpoint", 22))
        )
        target = base + 0.02 * self.occupancy
        self.temperature = relax(self.temperature, target, dt, 1200.0 if failed else 900.0)

    def telemetry(self) -> list[Message]:
        occupancy = round(self.occupancy + self.gauss(1.0))
        occupancy = max(0, occupancy)
        lanes = int(self.physics.get("lanes", 3))
        open_lanes = max(1, min(lanes, math.ceil(occupancy / 40))) if occupancy else 0
        messages: list[Message] = [(None, {"occupancy": occupancy, "entries": round(self.entries)})]
        self.entries = 0.0
        service = float(self.physics.get("serviceSecondsPerCustomer", 75))
        for lane in range(1, lanes + 1):
            is_open = lane <= open_lanes
            queue = self._poisson(occupancy / (25.0 * open_lanes)) if is_open else 0
            messages.append(
                (
                    f"lane{lane}",
                    {"queueLength": queue, "waitTime": queue * service, "open": is_open},
                )
            )
        co2 = 420 + float(self.physics.get("co2PerPerson", 6.0)) * occupancy + self.gauss(15)
        messages.append(
            (
                "environment",
                {
                    "temperature": round(self.temperature + self.gauss(0.1), 2),
                    "humidity": round(45 + 0.05 * occupancy + self.gauss(1.0), 1),
                    "co2": round(co2, 0),
                    "airQualityIndex": round(max(0.0, (co2 - 400) / 20), 1),
                },
            )
        )
        return messages

    def _poisson(self, mean: float) -> int:
        limit, k, product = math.exp(-mean), 0, self.rng.random()
        while product > limit:
            k += 1
            product *= self.rng.random()
        return k

    def reported(self) -> dict[str, Any]:
        return {"firmwareVersion": "1.2.0"}

    def cloud_properties(self) -> dict[str, Any]:
        return {"store": self.plan.site.name if self.plan.site else ""}

    def _reset(self, payload: Any) -> CommandResult:
        self.occupancy = 0.0
        return 200, {"status": "reset"}
