"""``aislehub bench anomaly``: simulator ground truth against detections over a month.

For each scenario (coolers with a degrading compressor, robots with wearing motors) the
fleet's physics runs in-process on a compressed clock (no network: this measures the
detector, not the gateway) with a fixed seed. A share of the devices develop the fault
at a random day, over a random number of days. Every reading goes to the detector and to
the template's threshold rule (read from its ``rules.json``: a tumbling-window average
above a value). Figures per scenario:

* **recall** — faulted devices flagged after their fault began and before the end;
* **precision** — flags that were on a faulted device after its onset, over all flags;
* **lead time** — how long before the threshold rule first fired the flag came (median,
  over faulted devices where both happened).

A naive detector (a fixed threshold on the raw reading, the usual first attempt) runs
beside ours on the same readings.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aislehub.intelligence.detector import DetectorConfig, FleetDetector
from aislehub.intelligence.specs import COOLER, ROBOT, SPECS
from aislehub.simulator.physics import build_model
from aislehub.simulator.profile import FaultRecord, load_profile, parse_duration, plan_devices
from aislehub.templates import load

DAY_S = 86400.0
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@dataclass(frozen=True, slots=True)
class AnomalyOptions:
    devices: int = 24
    days: float = 30.0
    interval_s: float = 300.0
    fault_share: float = 0.25
    seed: int = 7


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    template: str  # the application template directory
    template_id: str
    fault: str
    rule_id: str
    naive_field: str
    naive_threshold: float
    step_s: float
    onset_days: tuple[float, float]
    duration_days: tuple[float, float]


SCENARIOS = (
    Scenario(
        "cooler compressor",
        "connected-cooler",
        COOLER,
        "compressorDegrading",
        "cooler-too-warm",
        "condenserTemperature",
        50.0,
        30.0,
        (5, 20),
        (4, 10),
    ),
    Scenario(
        "robot motor",
        "micro-fulfilment",
        ROBOT,
        "motorWear",
        "robot-over-temperature",
        "motorTemperature",
        55.0,
        60.0,
        (5, 20),
        (3, 8),
    ),
)


@dataclass(slots=True)
class Outcome:
    faulted: int = 0
    detected: int = 0
    true_flags: int = 0
    false_flags: int = 0
    leads_h: list[float] = dataclasses.field(default_factory=list)
    rule_fired: int = 0

    def figures(self) -> dict[str, Any]:
        flags = self.true_flags + self.false_flags
        return {
            "recall": round(self.detected / self.faulted, 3) if self.faulted else None,
            "precision": round(self.true_flags / flags, 3) if flags else None,
            "median_lead_h": round(statistics.median(self.leads_h), 1) if self.leads_h else None,
            "flags": flags,
            "false_flags": self.false_flags,
            "rule_fired": self.rule_fired,
        }


def _threshold_rule(rules: Sequence[Mapping[str, Any]], rule_id: str) -> tuple[str, float, float]:
    """(field, value, window seconds) of a rule whose condition is ``avg(field) > value``."""
    rule = next(r for r in rules if r["id"] == rule_id)
    item = rule["conditions"]["items"][0]
    return str(item["field"]), float(item["value"]), parse_duration(item["window"])


class _TumblingAvg:
    """First time a tumbling-window average of ``field`` exceeds ``value``."""

    def __init__(self, field: str, value: float, window_s: float) -> None:
        self.field, self.value, self.window_s = field, value, window_s
        self.bucket: int | None = None
        self.total, self.count = 0.0, 0
        self.fired_at: float | None = None

    def feed(self, ts: float, reading: Mapping[str, Any]) -> None:
        bucket = int(ts // self.window_s)
        if self.bucket is not None and bucket != self.bucket and self.count:
            if self.fired_at is None and self.total / self.count > self.value:
                self.fired_at = (self.bucket + 1) * self.window_s
            self.total, self.count = 0.0, 0
        self.bucket = bucket
        value = reading.get(self.field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.total += float(value)
            self.count += 1


def run_scenario(scenario: Scenario, opts: AnomalyOptions) -> dict[str, Any]:
    app = load(scenario.template)
    profile = load_profile(app.simulator)
    physics = {**profile.physics, "stepSeconds": scenario.step_s}
    plans = plan_devices(profile, opts.devices, opts.seed)
    faults = _faults(scenario, [p.device_id for p in plans], opts)
    field, value, window = _threshold_rule(app.rules, scenario.rule_id)
    detector = FleetDetector(SPECS[scenario.template_id], DetectorConfig())
    ours, naive = Outcome(), Outcome()
    started = time.perf_counter()
    for plan in plans:
        mine = [f for f in faults if f.device_id == plan.device_id]
        model = build_model(profile.model, physics, plan, mine, START)
        if hasattr(model, "max_step_s"):
            model.max_step_s = scenario.step_s  # type: ignore[misc]
        rule = _TumblingAvg(field, value, window)
        flags: list[float] = []
        naive_flags: list[float] = []
        naive_hour: dict[int, list[float]] = {}
        t = START
        while t < START + opts.days * DAY_S:
            t += opts.interval_s
            model.advance(t)
            for component, reading in model.telemetry():
                if component is not None:
                    continue
                rule.feed(t, reading)
                flags += [a.at for a in detector.feed(plan.device_id, t, reading)]
                _naive(naive_hour, naive_flags, t, reading, scenario)
        onset = mine[0].start if mine else None
        _score(ours, flags, onset, rule.fired_at)
        _score(naive, naive_flags, onset, rule.fired_at)
    return {
        "scenario": scenario.name,
        "devices": opts.devices,
        "faulted": ours.faulted,
        "days": opts.days,
        "readings_per_device": int(opts.days * DAY_S / opts.interval_s),
        "cusum": ours.figures(),
        "naive": naive.figures()
        | {"threshold": f"{scenario.naive_field} > {scenario.naive_threshold:g}"},
        "seconds": round(time.perf_counter() - started, 1),
    }


def _naive(
    hours: dict[int, list[float]],
    flags: list[float],
    t: float,
    reading: Mapping[str, Any],
    scenario: Scenario,
) -> None:
    """Hourly median of the raw field above a fixed threshold; re-armed after a day."""
    value = reading.get(scenario.naive_field)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    if scenario.naive_field == "condenserTemperature" and reading.get("compressorOn") is not True:
        return
    hour = int(t // 3600)
    for done in [h for h in hours if h != hour]:
        median = statistics.median(hours.pop(done))
        if median > scenario.naive_threshold and (not flags or done * 3600 - flags[-1] > DAY_S):
            flags.append((done + 1) * 3600.0)
    hours.setdefault(hour, []).append(float(value))


def _faults(scenario: Scenario, devices: Sequence[str], opts: AnomalyOptions) -> list[FaultRecord]:
    import random

    rng = random.Random(opts.seed)
    chosen = rng.sample(list(devices), max(1, round(len(devices) * opts.fault_share)))
    records = []
    for device in sorted(chosen):
        onset = START + rng.uniform(*scenario.onset_days) * DAY_S
        end = onset + rng.uniform(*scenario.duration_days) * DAY_S
        records.append(FaultRecord(device, scenario.fault, onset, end))
    return records


def _score(out: Outcome, flags: Sequence[float], onset: float | None, fired: float | None) -> None:
    out.faulted += onset is not None
    out.rule_fired += fired is not None
    if onset is None:
        out.false_flags += len(flags)
        return
    good = [f for f in flags if f >= onset]
    out.false_flags += len(flags) - len(good)
    out.true_flags += len(good)
    if good:
        out.detected += 1
        if fired is not None:
            out.leads_h.append((fired - good[0]) / 3600.0)


def run_anomaly_bench(
    opts: AnomalyOptions, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    results = []
    for scenario in SCENARIOS:
        if progress:
            progress(f"simulating {opts.devices} devices for {opts.days:g} days: {scenario.name}")
        results.append(run_scenario(scenario, opts))
    return {
        "benchmark": "anomaly",
        "seed": opts.seed,
        "interval_s": opts.interval_s,
        "scenarios": results,
    }


def render_anomaly_table(figures: Mapping[str, Any]) -> str:
    lines = [
        f"anomaly detection over a simulated month (seed {figures['seed']},"
        f" a reading every {figures['interval_s']:g} s)",
        f"{'scenario':<20} {'detector':<8} {'recall':>7} {'precision':>9}"
        f" {'lead (median h)':>16} {'flags':>6}",
    ]
    for s in figures["scenarios"]:
        for name in ("cusum", "naive"):
            f = s[name]
            lines.append(
                f"{s['scenario']:<20} {name:<8} {_fmt(f['recall']):>7} {_fmt(f['precision']):>9}"
                f" {_fmt(f['median_lead_h']):>16} {f['flags']:>6}"
            )
        lines.append(
            f"{'':<20} {s['faulted']} of {s['devices']} devices faulted;"
            f" the threshold rule fired on {s['cusum']['rule_fired']};"
            f" naive = {s['naive']['threshold']}; {s['seconds']} s"
        )
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value}"
