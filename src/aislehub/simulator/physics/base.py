"""What every device model offers the device binding, and the plumbing they share."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

from aislehub.simulator.profile import OFFLINE, DevicePlan, FaultRecord

Message: TypeAlias = tuple[str | None, dict[str, Any]]  # (component or None, payload)
CommandResult: TypeAlias = tuple[int, Any]
EARTH_RADIUS_M = 6_371_000.0


class DeviceModel(Protocol):
    now: float

    @property
    def offline(self) -> bool:
        """True while a ``gatewayOffline`` fault keeps the device silent."""
        ...

    def advance(self, now: float) -> list[Message]:
        """Integrate up to ``now``; the event messages that happened meanwhile."""
        ...

    def telemetry(self) -> list[Message]:
        """The periodic reading(s), one message per component that reports."""
        ...

    def reported(self) -> dict[str, Any]:
        """Read-only properties, reported after connecting."""
        ...

    def cloud_properties(self) -> dict[str, Any]:
        """What the operator records about the device (its outlet, route, store …)."""
        ...

    def apply_desired(self, desired: Mapping[str, Any]) -> dict[str, Any]:
        """Acknowledgements (``{"value", "ac", "av", "ad"}``) of the writable properties set."""
        ...

    def command(self, name: str, payload: Any) -> CommandResult: ...


class ModelBase:
    """Seeded randomness, fault lookups, step integration, writable properties, commands."""

    max_step_s = 5.0
    writable: Mapping[str, tuple[float, float]] = {}  # name -> accepted range

    def __init__(self, plan: DevicePlan, faults: Sequence[FaultRecord], start: float) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.now = start
        self.faults = tuple(faults)
        self.settings: dict[str, float] = {}
        self.commands: dict[str, Callable[[Any], CommandResult]] = {}
        self._events: list[Message] = []

    def fault(self, kind: str) -> FaultRecord | None:
        """The fault of ``kind`` active now, if any."""
        return next((f for f in self.faults if f.kind == kind and f.active(self.now)), None)

    def fault_progress(self, kind: str) -> float:
        """0 before a fault of ``kind`` starts, rising to 1 at its end (1 after, for good)."""
        for f in self.faults:
            if f.kind == kind and self.now >= f.start:
                if f.end is None or f.end <= f.start:
                    return 1.0
                return min(1.0, (self.now - f.start) / (f.end - f.start))
        return 0.0

    @property
    def offline(self) -> bool:
        return self.fault(OFFLINE) is not None

    def emit(self, payload: dict[str, Any], component: str | None = None) -> None:
        self._events.append((component, payload))

    def advance(self, now: float) -> list[Message]:
        while self.now < now:
            dt = min(self.max_step_s, now - self.now)
            self.now += dt
            self.step(dt)
        events, self._events = self._events, []
        return events

    def step(self, dt: float) -> None:
        raise NotImplementedError

    def cloud_properties(self) -> dict[str, Any]:
        return {}

    def apply_desired(self, desired: Mapping[str, Any]) -> dict[str, Any]:
        acks: dict[str, Any] = {}
        for name, (low, high) in self.writable.items():
            if name not in desired:
                continue
            value = desired[name]
            ok = _is_number(value) and low <= value <= high
            if ok:
                self.settings[name] = float(value)
            why = "applied" if ok else f"{name} must be a number from {low:g} to {high:g}"
            acks[name] = {
                "value": value,
                "ac": 200 if ok else 400,
                "av": desired.get("$version"),
                "ad": why,
            }
        return acks

    def command(self, name: str, payload: Any) -> CommandResult:
        handler = self.commands.get(name)
        if handler is None:
            return 404, {"message": f"unknown command {name!r}; known: {sorted(self.commands)}"}
        return handler(payload)

    def gauss(self, sigma: float) -> float:
        return self.rng.gauss(0.0, sigma)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def relax(value: float, target: float, dt: float, tau: float) -> float:
    """First-order lag toward ``target`` over ``dt``, exact for a constant target."""
    return target + (value - target) * math.exp(-dt / tau)


def offset_point(lat: float, lon: float, metres: float, bearing_deg: float) -> tuple[float, float]:
    """The point ``metres`` away from (lat, lon) along ``bearing_deg`` (small distances)."""
    b = math.radians(bearing_deg)
    dlat = metres * math.cos(b) / EARTH_RADIUS_M
    dlon = metres * math.sin(b) / (EARTH_RADIUS_M * math.cos(math.radians(lat)))
    return lat + math.degrees(dlat), lon + math.degrees(dlon)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine) between two (lat, lon) points."""
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def pick(rng: random.Random, bounds: Any, default: float) -> float:
    """A number from the physics: a constant, or uniform in a ``[low, high]`` pair."""
    if isinstance(bounds, list | tuple) and len(bounds) == 2:
        return rng.uniform(float(bounds[0]), float(bounds[1]))
    return float(bounds) if _is_number(bounds) else default
