"""Each template's rules fire on its simulator's injected faults, and only there.

For every application template: a small fleet is planned from its ``simulator.json`` with
a fixed seed, the profile's own fault schedule is drawn as ground truth, and the physics
runs on a compressed clock (simulated time moves by assignment, hours in milliseconds).
Every reading goes through the device binding (:meth:`SimulatedDevice.tick`, so an
offline device stays silent), is framed as an ingest-log record and decoded into columns
by the rules engine's :class:`BatchDecoder`, then stepped through a
:class:`RuleEvaluator` per rule parsed from the template's own ``rules.json`` and checked
against the template, one batch per simulated minute with the watermark at its end.

Asserted per rule: it opens on each device that has the fault it targets, after the
fault's start and within the expected simulated time; it never opens on a device without
a fault (nor on a device whose faults are not its target).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pytest

from aislehub.hub.templates import CompiledTemplate, compile_template, parse_document
from aislehub.ingest.record import TelemetryRecord, encode_record
from aislehub.rules.batch import BatchDecoder, DeviceIndex
from aislehub.rules.evaluate import RuleEvaluator, field_keys
from aislehub.rules.model import Rule, check_against_template, parse_rule
from aislehub.rules.properties import flatten
from aislehub.simulator.device import SimulatedDevice
from aislehub.simulator.physics import build_model
from aislehub.simulator.profile import (
    OFFLINE,
    FaultRecord,
    load_profile,
    plan_devices,
    schedule_faults,
)
from aislehub.store.templates import TemplateRecord
from aislehub.templates import load

T0 = 1_767_225_600.0  # 2026-01-01T00:00Z (02:00 in Johannesburg, where the stores are)
SEED = 7
BATCH_S = 60.0  # one evaluation step per simulated minute (by default)
APP = "app"
MIN = 60.0


@dataclass(frozen=True, slots=True)
class Expect:
    """``rule`` opens on every device with a fault of ``kind`` within ``within`` seconds
    of the fault's start; on devices with a fault in ``tolerated`` it may open too."""

    rule: str
    kind: str | None
    within: float
    tolerated: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Scenario:
    template: str
    count: int
    hours: float
    expect: tuple[Expect, ...]
    batch_s: float = BATCH_S


SCENARIOS = (
    Scenario(
        "connected-cooler",
        10,
        4.0,
        (
            # wear is full at the fault's end (2 h): 15 % of the cooling is left, and the
            # cabinet (tau 2 h) creeps toward ~9-11 °C, slowest in the cool small hours;
            # then a whole 15-minute window must average above 8 °C
            Expect("cooler-too-warm", "compressorDegrading", 2 * 3600 + 100 * MIN),
            Expect("cooler-moved", "coolerMoved", 2 * MIN),  # the next location reading
            Expect("cooler-door-open", "doorLeftOpen", 5 * MIN + 2 * MIN),
            Expect("cooler-offline", "gatewayOffline", 60 * MIN + 2 * MIN),
        ),
    ),
    Scenario(
        "display-tracking",
        8,
        1.5,
        (
            Expect("display-compliance-low", "displayRemoved", 15 * MIN + 2 * MIN),
            Expect("display-gateway-offline", "gatewayOffline", 30 * MIN + 2 * MIN),
        ),
    ),
    Scenario(
        "shipment-monitoring",
        10,
        1.5,
        (
            Expect("shipment-shock", "shipmentDropped", 2 * MIN),
            Expect("shipment-opened", "containerOpened", 2 * MIN),
            # the reefer fails: past 8 °C in ~5 min, then a whole 10-minute window
            Expect("shipment-cold-chain", "temperatureExcursion", 30 * MIN),
            Expect("shipment-tracker-offline", None, 0),
        ),
    ),
    Scenario(
        "micro-fulfilment",
        8,
        3.0,
        (
            # friction heat crosses 70 °C somewhere past half the wear, lagged by ~10 min
            Expect("robot-over-temperature", "motorWear", 2 * 3600 + 30 * MIN),
            Expect("robot-down", "robotDown", 2 * MIN),
            Expect("structure-vibration", "structureVibration", 30 * MIN + 2 * MIN),
        ),
    ),
    Scenario(
        "in-store-analytics",
        6,
        24.0,  # a whole day: opening hours, the afternoon peak, closing
        (
            # the store drifts toward the outdoor temperature (tau 20 min)
            Expect("store-too-warm", "hvacFailure", 60 * MIN),
            Expect("checkout-queue-long", None, 0),
            Expect("store-air-quality", None, 0),
            Expect("store-over-capacity", None, 0),
        ),
        batch_s=300.0,  # 30 s readings, 5- and 15-minute windows: a step per 5 minutes
    ),
    Scenario(
        "smart-inventory",
        8,
        2.0,
        (
            Expect("shelf-unknown-tags", "strayTags", 30 * MIN + 2 * MIN),
            Expect("shelf-reader-offline", "gatewayOffline", 30 * MIN + 2 * MIN),
            # out of stock is not a fault but what the shelf reports: checked apart
            Expect("shelf-out-of-stock", "outOfStock", 2 * MIN),
        ),
    ),
)


# -- the harness -------------------------------------------------------------------------


class Clock:
    """The compressed clock: simulated epoch seconds, moved by assignment."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(slots=True)
class Outbox:
    """Stands in for the device client: frames each message as the gateway logs it."""

    device_id: str
    clock: Clock
    records: list[tuple[int, bytes]]
    payloads: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    async def send_telemetry(self, payload: dict[str, Any], component: str | None = None) -> None:
        props = {"$.ct": "application/json", "$.ce": "utf-8"}
        if component:
            props["$.sub"] = component
        record = TelemetryRecord(
            APP, self.device_id, None, int(self.clock() * 1000), props, orjson.dumps(payload)
        )
        self.records.append((len(self.records), encode_record(record)))
        self.payloads.append((self.clock(), payload))


@dataclass(slots=True)
class Run:
    device_ids: list[str]
    faults: list[FaultRecord]
    opened: dict[str, dict[str, float]]  # rule -> device -> first opening (epoch s)
    outboxes: dict[str, Outbox]
    emitted: dict[str, list[tuple[float, dict[str, Any]]]]  # event messages, sent or not

    def faulted(self, kind: str) -> dict[str, FaultRecord]:
        return {f.device_id: f for f in self.faults if f.kind == kind}

    def kinds(self, device_id: str) -> set[str]:
        return {f.kind for f in self.faults if f.device_id == device_id}

    def silenced(self, device_id: str, start: float, end: float) -> bool:
        """Whether a ``gatewayOffline`` fault of the device overlaps [start, end]."""
        return any(
            f.device_id == device_id
            and f.kind == OFFLINE
            and f.start <= end
            and (f.end is None or f.end >= start)
            for f in self.faults
        )


def compiled(template: dict[str, Any]) -> CompiledTemplate:
    record = TemplateRecord.__new__(TemplateRecord)
    for attr, value in (("id", template["@id"]), ("etag", "x"), ("document", template)):
        object.__setattr__(record, attr, value)
    return compile_template(record, parse_document(template["@id"], template))


def template_rules(name: str) -> list[Rule]:
    app = load(name)
    target = compiled(app.template)
    return [check_against_template(parse_rule(doc), target) for doc in app.rules]


def simulate(scenario: Scenario) -> Run:
    app = load(scenario.template)
    profile = load_profile(app.simulator)
    plans = plan_devices(profile, scenario.count, seed=SEED)
    faults = schedule_faults(profile, plans, T0, seed=SEED)
    clock = Clock(T0)
    devices = [
        SimulatedDevice(build_model(profile.model, profile.physics, p, faults, T0), clock)
        for p in plans
    ]
    emitted: dict[str, list[tuple[float, dict[str, Any]]]] = {p.device_id: [] for p in plans}
    for plan, device in zip(plans, devices, strict=True):
        watch(device, emitted[plan.device_id])
    records: list[tuple[int, bytes]] = []
    outboxes = {p.device_id: Outbox(p.device_id, clock, records) for p in plans}
    index = DeviceIndex([(APP, p.device_id) for p in plans])  # device number = plan index
    rules = template_rules(scenario.template)
    evaluators = [RuleEvaluator(rule, since_ms=int(T0 * 1000)) for rule in rules]
    decoder = BatchDecoder(index)
    decoder.set_fields(set().union(*(field_keys(r) for r in rules)))
    props = {
        i: flatten(d.model.reported(), d.model.cloud_properties()) for i, d in enumerate(devices)
    }
    for ev in evaluators:
        ev.set_members(np.ones(len(plans), bool), int(T0 * 1000))
        ev.step(None, int(T0 * 1000), props)
    # each device sends every interval from its own phase, as the fleet staggers them
    interval = profile.interval_s
    phases = [interval * (i + 0.5) / len(plans) for i in range(len(plans))]
    opened: dict[str, dict[str, float]] = {r.id: {} for r in rules}

    async def drive() -> None:
        end = T0 + scenario.hours * 3600
        batch_end, k = T0 + scenario.batch_s, 0
        ticks = sorted(
            (T0 + phase + n * interval, i)
            for i, phase in enumerate(phases)
            for n in range(int((end - T0 - phase) // interval) + 1)
        )
        while batch_end <= end:
            records.clear()
            while k < len(ticks) and ticks[k][0] < batch_end:
                clock.now, i = ticks[k]
                await devices[i].tick(outboxes[plans[i].device_id])  # type: ignore[arg-type]
                k += 1
            cols = decoder.decode(records) if records else None
            for ev in evaluators:
                for t in ev.step(cols, int(batch_end * 1000)):
                    if t.opened:
                        opened[t.rule_id].setdefault(plans[t.device].device_id, t.t_ms / 1000)
            batch_end += scenario.batch_s

    try:
        asyncio.run(drive())
    finally:
        decoder.close()
    return Run([p.device_id for p in plans], faults, opened, outboxes, emitted)


def watch(device: SimulatedDevice, into: list[tuple[float, dict[str, Any]]]) -> None:
    """Keep the event messages the model produces, also those an offline device drops."""
    advance = device.model.advance

    def advance_and_keep(now: float) -> list[tuple[str | None, dict[str, Any]]]:
        events = advance(now)
        into.extend((now, payload) for _, payload in events)
        return events

    device.model.advance = advance_and_keep  # type: ignore[method-assign]


def out_of_stock(run: Run) -> dict[str, float]:
    """Ground truth of the shelves: when each first ran out of an SKU. An offline reader
    says so when it is back: its start counts from its first message after that."""
    first: dict[str, float] = {}
    for device_id, events in run.emitted.items():
        gone = next((t for t, e in events if "outOfStock" in e), None)
        if gone is not None:
            sent = [t for t, _ in run.outboxes[device_id].payloads if t >= gone]
            first[device_id] = sent[0] if sent else gone
    return first


def check(run: Run, expect: Expect) -> list[str]:
    """What is wrong with ``expect.rule``'s alerts in ``run`` (empty: all as expected)."""
    problems: list[str] = []
    opened = run.opened[expect.rule]
    if expect.kind == "outOfStock":
        starts = out_of_stock(run)
    elif expect.kind is not None:
        starts = {d: f.start for d, f in run.faulted(expect.kind).items()}
    else:
        starts = {}
    for device_id, start in starts.items():
        at = opened.get(device_id)
        masked = expect.kind != OFFLINE and run.silenced(device_id, start, start + expect.within)
        if at is None and masked:
            continue  # the fault happened while the device sent nothing: unseen, rightly
        if at is None:
            problems.append(f"{device_id} ({expect.kind} at +{start - T0:.0f} s): never opened")
        elif not start <= at <= start + expect.within:
            problems.append(
                f"{device_id}: opened at +{at - T0:.0f} s, fault at +{start - T0:.0f} s, "
                f"expected within {expect.within:.0f} s"
            )
    for device_id, at in opened.items():
        if device_id in starts:
            continue
        kinds = run.kinds(device_id)
        if not kinds & expect.tolerated:
            why = f"faults {sorted(kinds)}" if kinds else "no fault"
            problems.append(f"{device_id} ({why}): opened at +{at - T0:.0f} s")
    return problems


_RUNS: dict[str, Run] = {}


def run_of(scenario: Scenario) -> Run:
    if scenario.template not in _RUNS:
        _RUNS[scenario.template] = simulate(scenario)
    return _RUNS[scenario.template]


CASES = [(s, e) for s in SCENARIOS for e in s.expect]


@pytest.mark.parametrize(
    ("scenario", "expect"), CASES, ids=[f"{s.template}:{e.rule}" for s, e in CASES]
)
def test_rule_fires_on_its_fault_and_only_there(scenario: Scenario, expect: Expect) -> None:
    run = run_of(scenario)
    assert check(run, expect) == []
    if expect.kind is not None:  # the fleet had such a device and a fault-free one
        assert run.opened[expect.rule], f"{expect.rule} never opened"
        assert any(not run.kinds(d) for d in run.device_ids)


def test_every_rule_of_every_template_is_covered() -> None:
    for scenario in SCENARIOS:
        rules = {r["id"] for r in load(scenario.template).rules}
        assert rules == {e.rule for e in scenario.expect}, scenario.template


def test_every_fault_kind_of_every_profile_is_scheduled() -> None:
    """The small fleets still draw each fault of their profile (else a rule is untested)."""
    for scenario in SCENARIOS:
        run = run_of(scenario)
        wanted = {f["kind"] for f in load(scenario.template).simulator.get("faults", [])}
        assert {f.kind for f in run.faults} == wanted
