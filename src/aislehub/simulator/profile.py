"""Simulator profiles (``simulator.json``, docs/templates-format.md): parse, plan, schedule.

A profile says which physics model drives the devices of a template, how many stand at
each site or travel each route, the model's parameters and a fault schedule. This module
turns it into plain data: :class:`DevicePlan` (one per device: id, site or route, seed)
and :class:`FaultRecord` (the ground truth: which device has which fault from when to
when). Every choice is drawn from ``random.Random(seed)``: one seed, one fleet.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DevicePlan",
    "FaultRecord",
    "FaultSpec",
    "Profile",
    "Route",
    "Site",
    "load_profile",
    "parse_duration",
    "plan_devices",
    "schedule_faults",
]

_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?"
    r"(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
OFFLINE = "gatewayOffline"  # the one fault every model has: the device stops sending


def parse_duration(text: str) -> float:
    """ISO 8601 duration (days and time parts: ``P1DT2H``, ``PT15M``) in seconds."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT15M or P2DT3H")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


@dataclass(frozen=True, slots=True)
class Site:
    """A store, outlet or centre where devices stand."""

    name: str
    lat: float
    lon: float
    devices: int


@dataclass(frozen=True, slots=True)
class Route:
    """A route that trackers travel, from the first waypoint to the last, then back."""

    name: str
    waypoints: tuple[tuple[float, float], ...]
    duration_s: float
    devices: int


@dataclass(frozen=True, slots=True)
class FaultSpec:
    kind: str
    devices: int
    at_s: float
    duration_s: float | None
    params: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Profile:
    template_id: str
    model_id: str
    model: str
    prefix: str
    interval_s: float
    sites: tuple[Site, ...]
    routes: tuple[Route, ...]
    physics: Mapping[str, Any]
    faults: tuple[FaultSpec, ...]

    @property
    def default_count(self) -> int:
        return sum(s.devices for s in self.sites) + sum(r.devices for r in self.routes)


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """One simulated device: its id, where it is, and the seed of its randomness."""

    device_id: str
    index: int
    seed: int
    site: Site | None = None
    route: Route | None = None


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """Ground truth: ``device_id`` has ``kind`` from ``start`` (until ``end``, if it ends)."""

    device_id: str
    kind: str
    start: float
    end: float | None
    params: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def active(self, now: float) -> bool:
        return self.start <= now and (self.end is None or now < self.end)


def _require(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"simulator profile: {key!r} is missing or not a {kind}")
    return value


def load_profile(doc: Mapping[str, Any]) -> Profile:
    """A :class:`Profile` from a ``simulator.json`` document; ValueError names the problem."""
    sites = tuple(
        Site(str(s["name"]), float(s["lat"]), float(s["lon"]), int(s["devices"]))
        for s in doc.get("sites", [])
    )
    routes = tuple(
        Route(
            str(r["name"]),
            tuple((float(p[0]), float(p[1])) for p in r["waypoints"]),
            float(r["durationHours"]) * 3600,
            int(r["devices"]),
        )
        for r in doc.get("routes", [])
    )
    if not sites and not routes:
        raise ValueError("simulator profile: 'sites' or 'routes' is required")
    if any(len(r.waypoints) < 2 or r.duration_s <= 0 for r in routes):
        raise ValueError("simulator profile: a route needs two waypoints and a duration")
    faults = tuple(_fault(f) for f in doc.get("faults", []))
    interval = parse_duration(_require(doc, "interval", str))
    if interval <= 0:
        raise ValueError("simulator profile: 'interval' must be positive")
    return Profile(
        _require(doc, "template", str),
        _require(doc, "modelId", str),
        _require(doc, "model", str),
        _require(doc, "deviceIdPrefix", str),
        interval,
        sites,
        routes,
        dict(_require(doc, "physics", dict)),
        faults,
    )


def _fault(doc: Mapping[str, Any]) -> FaultSpec:
    duration = doc.get("duration")
    known = {"kind", "devices", "at", "duration"}
    return FaultSpec(
        _require(doc, "kind", str),
        int(doc.get("devices", 1)),
        parse_duration(_require(doc, "at", str)),
        parse_duration(duration) if duration is not None else None,
        {k: v for k, v in doc.items() if k not in known},
    )


def plan_devices(profile: Profile, count: int | None = None, seed: int = 0) -> list[DevicePlan]:
    """``count`` devices (default: the profile's), spread over its sites and routes in
    proportion to their counts; ids are ``<prefix>-001`` …"""
    places: Sequence[Site | Route] = (*profile.sites, *profile.routes)
    weights = [p.devices for p in places]
    total = count if count is not None else sum(weights)
    slots = _apportion(total, weights)
    plans: list[DevicePlan] = []
    for place, n in zip(places, slots, strict=True):
        for _ in range(n):
            index = len(plans)
            device_id = f"{profile.prefix}-{index + 1:03d}"
            site = place if isinstance(place, Site) else None
            route = place if isinstance(place, Route) else None
            plans.append(DevicePlan(device_id, index, seed * 100_003 + index, site, route))
    return plans


def _apportion(total: int, weights: Sequence[int]) -> list[int]:
    """Largest-remainder split of ``total`` by ``weights`` (each place gets its share)."""
    whole = sum(weights) or 1
    exact = [total * w / whole for w in weights]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def schedule_faults(
    profile: Profile, plans: Sequence[DevicePlan], start: float, seed: int = 0
) -> list[FaultRecord]:
    """The ground truth of the profile's fault schedule for ``plans``, from ``start``.

    Each fault entry picks its devices at random (a device gets at most one fault of each
    entry); ``at`` and ``duration`` are offsets from ``start``."""
    rng = random.Random(seed)
    records: list[FaultRecord] = []
    for spec in profile.faults:
        chosen = rng.sample(list(plans), min(spec.devices, len(plans)))
        for plan in sorted(chosen, key=lambda p: p.index):
            begin = start + spec.at_s
            end = begin + spec.duration_s if spec.duration_s is not None else None
            records.append(FaultRecord(plan.device_id, spec.kind, begin, end, spec.params))
    return records
