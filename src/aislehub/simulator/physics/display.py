"""A store's BLE gateway and the campaign displays whose beacons it sees.

Each display carries a beacon at some metres from the gateway; a sighting's RSSI follows
the log-distance path-loss model ``rssi = rssi_1m - 10 n log10(d) + noise``. Displays
arrive and come off the floor as Poisson processes (``arrivalsPerDay``,
``removalsPerDay``); the gateway reports presence, sightings, campaign compliance against
its ``expectedDisplays`` (default: the displays the campaign placed, i.e. those it starts
with, so a store at full compliance reads 100 %) and one event message per arrival or
removal.
Faults: ``displayRemoved`` (a display comes off the floor at the fault's start),
``gatewayOffline``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from aislehub.simulator.physics.base import CommandResult, Message, ModelBase, pick
from aislehub.simulator.profile import DevicePlan, FaultRecord

DAY_S = 86400.0


class DisplayGateway(ModelBase):
    writable = {"expectedDisplays": (0, 100), "scanIntervalSeconds": (1, 3600)}

    def __init__(
        self,
        physics: Mapping[str, Any],
        plan: DevicePlan,
        faults: Sequence[FaultRecord],
        start: float,
    ) -> None:
        super().__init__(plan, faults, start)
        self.max_step_s = 60.0
        self.physics = physics
        count = round(pick(self.rng, physics.get("displaysPerGateway"), 5))
        self.displays: dict[str, float | None] = {}  # beacon -> distance (None: gone)
        for i in range(count):
            self.displays[f"{plan.device_id}-d{i + 1}"] = self.rng.uniform(2, 25)
        self.settings["expectedDisplays"] = float(physics.get("expectedDisplays", count))
        self.settings["scanIntervalSeconds"] = 10.0
        self._handled: set[FaultRecord] = set()
        self.commands = {"rescan": self._rescan}

    def step(self, dt: float) -> None:
        removal_rate = float(self.physics.get("removalsPerDay", 0.1)) / DAY_S
        arrival_rate = float(self.physics.get("arrivalsPerDay", 0.2)) / DAY_S
        for beacon, distance in list(self.displays.items()):
            if distance is not None and self.rng.random() < removal_rate * dt:
                self._remove(beacon)
        if self.rng.random() < arrival_rate * dt:
            beacon = f"{self.plan.device_id}-d{len(self.displays) + 1}"
            self.displays[beacon] = self.rng.uniform(2, 25)
            self.emit({"displayArrived": beacon})
        removed = self.fault("displayRemoved")
        if removed is not None and removed not in self._handled:
            self._handled.add(removed)
            present = [b for b, d in self.displays.items() if d is not None]
            if present:
                self._remove(present[0])

    def _remove(self, beacon: str) -> None:
        self.displays[beacon] = None
        self.emit({"displayRemoved": beacon})

    def _rssi(self, distance: float) -> float:
        p = self.physics
        loss = 10 * float(p.get("pathLossExponent", 2.0)) * math.log10(max(distance, 0.5))
        return float(p.get("rssiAtOneMetre", -59)) - loss + self.gauss(float(p.get("rssiNoise", 3)))

    def telemetry(self) -> list[Message]:
        rssi = {b: round(self._rssi(d), 1) for b, d in self.displays.items() if d is not None}
        sightings = [{"beacon": b, "rssi": r} for b, r in rssi.items()]
        expected = self.settings["expectedDisplays"] or 1.0
        return [
            (
                None,
                {
                    "displaysOnFloor": len(sightings),
                    "beaconsSeen": len(sightings),
                    "strongestRssi": max(rssi.values(), default=-100.0),
                    "sightings": sightings,
                    "compliancePercent": round(min(100.0, 100.0 * len(sightings) / expected), 1),
                },
            )
        ]

    def reported(self) -> dict[str, Any]:
        return {"firmwareVersion": "1.8.0"}

    def cloud_properties(self) -> dict[str, Any]:
        site = self.plan.site
        props: dict[str, Any] = {"campaign": str(self.physics.get("campaign", "campaign"))}
        if site is not None:
            props |= {"store": site.name, "storeLocation": {"lat": site.lat, "lon": site.lon}}
        return props

    def _rescan(self, payload: Any) -> CommandResult:
        seen = sum(1 for d in self.displays.values() if d is not None)
        return 200, {"displaysOnFloor": seen}
