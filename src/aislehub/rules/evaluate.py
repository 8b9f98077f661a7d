"""Rule evaluation over column batches: pure, no I/O, no clock (time is an argument).

Each condition of a rule is a step function of time per device: ``truth[device, k]`` is
-1 (unknown), 0 or 1. One :meth:`RuleEvaluator.step` turns a batch into *events*
``(device, t, k, truth)``, all as NumPy arrays:

- a per-message telemetry condition: one event per message carrying the field;
- an aggregate: one event per device when a *pane* closes. Panes are aligned to the epoch;
  a tumbling window is one pane, a sliding window ten panes of a tenth of it, evaluated
  each time a pane closes (so a sliding window moves in steps of window/10). Pane state is
  count, sum, min and max per device, so every aggregate is mergeable;
- a geofence over telemetry: one event per location message (haversine distance from the
  device's centre); over properties, one per property change;
- a property condition: one event per property change;
- ``noData``: false at every message, true at ``last seen + duration`` once the watermark
  passes it.

Events are sorted by (device, t), each condition's truth carried forward within a device,
combined with all/any (unknown counts as false), and compared with the previous combined
value: rising edges open alerts, falling edges resolve them. Python work is per pane, per
property change and per transition, never per message.

Time: a pane closes when the *watermark* passes its end. The engine sets the watermark to
the clock minus a grace period while it keeps up with the log, and to the newest message
time while it catches up, so a replay after a restart closes the same panes as live
evaluation did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aislehub.rules.model import (
    Condition,
    FieldRef,
    GeofenceCondition,
    LatLon,
    NoDataCondition,
    PropertyCondition,
    Rule,
    Scalar,
    TelemetryCondition,
)

__all__ = [
    "SLIDING_PANES",
    "Columns",
    "FieldKey",
    "RuleEvaluator",
    "Transition",
    "field_keys",
    "haversine_m",
]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
FieldKey = tuple[str | None, str, str]  # (component, field, "num" | "text" | "lat" | "lon")

SLIDING_PANES = 10
EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
_UNKNOWN, _NONE = -1, -2


@dataclass(frozen=True, slots=True)
class Columns:
    """One batch of messages, in log order: device indexes, times and extracted fields.

    ``values[key]`` is float64 (NaN where the message lacks a number) for ``num``, ``lat``
    and ``lon`` keys, and an object array of JSON scalars (None where absent) for ``text``.
    """

    device: Ints
    ts: Ints
    values: Mapping[FieldKey, npt.NDArray[Any]]

    def __len__(self) -> int:
        return len(self.device)


@dataclass(frozen=True, slots=True)
class Transition:
    rule_id: str
    device: int  # index in the engine's device table
    t_ms: int
    opened: bool  # True: the rule began to hold; False: it cleared
    truths: tuple[int, ...] = ()  # each condition's truth at that moment (-1 unknown)


def field_keys(rule: Rule) -> set[FieldKey]:
    """The message fields ``rule`` reads, as the batch decoder must extract them."""
    keys: set[FieldKey] = set()
    for cond in rule.conditions:
        if isinstance(cond, TelemetryCondition):
            kind = (
                "num"
                if isinstance(cond.value, float) and not isinstance(cond.value, bool)
                else "text"
            )
            keys.add((cond.field.component, cond.field.name, kind))
        elif isinstance(cond, GeofenceCondition) and cond.source != "property":
            keys.add((cond.location.component, cond.location.name, "lat"))
            keys.add((cond.location.component, cond.location.name, "lon"))
    return keys


def haversine_m(lat1: Floats, lon1: Floats, lat2: Floats, lon2: Floats) -> Floats:
    """Great-circle distance in metres (haversine), element-wise; NaN in, NaN out."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    out: Floats = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return out


def compare(values: npt.NDArray[Any], op: str, literal: Scalar) -> Bools:
    """``values op literal`` element-wise; NaN or None never satisfies it."""
    if isinstance(literal, float) and values.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            out: Bools = {
                "=": np.equal,
                "!=": np.not_equal,
                ">": np.greater,
                ">=": np.greater_equal,
                "<": np.less,
                "<=": np.less_equal,
            }[op](values, literal)
        kept: Bools = out & ~np.isnan(values)
        return kept
    present = np.array([v is not None for v in values], dtype=bool)
    equal = np.array([v == literal and type(v) is type(literal) for v in values], dtype=bool)
    return (
        (equal if op == "=" else ~equal & present)
        if op in ("=", "!=")
        else np.zeros(len(values), bool)
    )


def _scalar_truth(value: Any, op: str, literal: Scalar) -> int:
    """One property value against a literal: -1 when absent or of another type."""
    if value is None:
        return _UNKNOWN
    if isinstance(literal, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _UNKNOWN
        return int(bool(compare(np.array([float(value)]), op, literal)[0]))
    same = type(value) is type(literal) and value == literal
    return int(same if op == "=" else not same)


def point_of(value: Any) -> tuple[float, float] | None:
    """(lat, lon) of ``{"lat", "lon"}`` or a GeoJSON point, else None."""
    if isinstance(value, Mapping):
        if value.get("type") == "Point":
            coords = value.get("coordinates")
            if isinstance(coords, list) and len(coords) >= 2:
                return _finite(coords[1], coords[0])
            return None
        return _finite(value.get("lat"), value.get("lon"))
    return None


def _finite(lat: Any, lon: Any) -> tuple[float, float] | None:
    ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon))
    return (float(lat), float(lon)) if ok and math.isfinite(lat) and math.isfinite(lon) else None


def reduce_per_device(
    dev: Ints, ts: Ints, truth: Bools, size: int
) -> tuple[Ints, Ints, npt.NDArray[np.int8]]:
    """Per-message truths → at most two events per device: its first true message, and
    its last message. Flapping inside one batch (tens to hundreds of milliseconds) thus
    collapses into one episode; everything else is kept. No sort, two scatters."""
    n = len(dev)
    index = np.arange(n)
    last = np.full(size, -1, np.int64)
    np.maximum.at(last, dev, index)
    first_true = np.full(size, n, np.int64)
    np.minimum.at(first_true, dev[truth], index[truth])
    rows = np.concatenate([first_true[first_true < n], last[last >= 0]])
    rows.sort()
    rows = rows[np.r_[True, rows[1:] != rows[:-1]]] if len(rows) else rows
    return dev[rows], ts[rows], truth[rows].astype(np.int8)


@dataclass(slots=True)
class _Events:
    """Events collected during one step, as lists of arrays concatenated at the end."""

    dev: list[Ints] = field(default_factory=list)
    t: list[Ints] = field(default_factory=list)
    k: list[Ints] = field(default_factory=list)
    truth: list[npt.NDArray[np.int8]] = field(default_factory=list)

    def add(self, dev: Ints, t: Ints | int, k: int, truth: npt.NDArray[Any]) -> None:
        if len(dev) == 0:
            return
        self.dev.append(dev.astype(np.int64, copy=False))
        self.t.append(np.broadcast_to(np.asarray(t, np.int64), dev.shape).copy())
        self.k.append(np.full(len(dev), k, np.int64))
        self.truth.append(truth.astype(np.int8))


class Panes:
    """Count, sum, min and max per device and pane, for one aggregate condition."""

    def __init__(self, cond: TelemetryCondition, k: int) -> None:
        assert cond.window_ms is not None and cond.aggregation is not None
        self.cond, self.k = cond, k
        self.n = SLIDING_PANES if cond.window_type == "sliding" else 1
        self.pane_ms = max(1, cond.window_ms // self.n)
        self.cur = -1  # the open pane (epoch ms // pane_ms); -1: none yet
        self.cnt = np.zeros((0, self.n), np.int64)
        self.sum = np.zeros((0, self.n), np.float64)
        self.min = np.full((0, self.n), np.inf)
        self.max = np.full((0, self.n), -np.inf)
        self.held = np.zeros(0, bool)  # the condition held at the last close, per device
        self.late = 0  # messages for panes already closed, dropped

    def grow(self, size: int) -> None:
        extra = size - len(self.cnt)
        if extra > 0:
            self.cnt = np.vstack([self.cnt, np.zeros((extra, self.n), np.int64)])
            self.sum = np.vstack([self.sum, np.zeros((extra, self.n))])
            self.min = np.vstack([self.min, np.full((extra, self.n), np.inf)])
            self.max = np.vstack([self.max, np.full((extra, self.n), -np.inf)])
            self.held = np.concatenate([self.held, np.zeros(extra, bool)])

    def add(self, dev: Ints, ts: Ints, v: Floats, ev: _Events, ctx: _StepContext) -> None:
        pane = ts // self.pane_ms
        low, high = int(pane.min()), int(pane.max())
        if self.cur < 0:
            self.cur = low
        if low == high:  # the usual case: a batch spans less than a pane
            self._pane(low, dev, v, ev, ctx)
            return
        for p in np.unique(pane):
            rows = pane == p
            self._pane(int(p), dev[rows], v[rows], ev, ctx)

    def _pane(self, p: int, dev: Ints, v: Floats, ev: _Events, ctx: _StepContext) -> None:
        if p < self.cur:
            self.late += len(dev)
            return
        self.advance(p, ev, ctx)
        self._fold(dev, v, self.cur % self.n)

    def _fold(self, d: Ints, x: Floats, s: int) -> None:
        """Add values to pane slot ``s``: only the statistics the aggregation reads."""
        size = len(self.cnt)
        self.cnt[:, s] += np.bincount(d, minlength=size)
        match self.cond.aggregation:
            case "avg" | "sum":
                self.sum[:, s] += np.bincount(d, weights=x, minlength=size)
            case "min":
                np.minimum.at(self.min[:, s], d, x)
            case "max":
                np.maximum.at(self.max[:, s], d, x)

    def advance(self, to: int, ev: _Events, ctx: _StepContext) -> None:
        """Close panes until ``to`` is the open one, evaluating the window at each close."""
        while 0 <= self.cur < to:
            self._evaluate(ev, ctx, (self.cur + 1) * self.pane_ms)
            self.cur += 1
            if not self.cnt.any() and not self.held.any():  # nothing can change: skip the gap
                self.cur = to
            self._clear(self.cur % self.n)

    def _clear(self, s: int) -> None:
        self.cnt[:, s], self.sum[:, s] = 0, 0.0
        self.min[:, s], self.max[:, s] = np.inf, -np.inf

    def _evaluate(self, ev: _Events, ctx: _StepContext, end_ms: int) -> None:
        c = self.cnt.sum(axis=1)
        dev = np.flatnonzero(ctx.member[: len(c)] & ((c > 0) | self.held))
        if len(dev) == 0:
            return
        holds = compare(self.aggregate(dev, c[dev]), self.cond.operator, self.cond.value)
        self.held[dev] = holds
        ev.add(dev, end_ms, self.k, holds)

    def aggregate(self, dev: Ints, count: Ints) -> Floats:
        with np.errstate(invalid="ignore", divide="ignore"):
            match self.cond.aggregation:
                case "count":
                    return count.astype(np.float64)
                case "sum":
                    return np.where(count > 0, self.sum[dev].sum(axis=1), np.nan)
                case "avg":
                    return np.where(count > 0, self.sum[dev].sum(axis=1) / count, np.nan)
                case "min":
                    return np.where(count > 0, self.min[dev].min(axis=1), np.nan)
                case _:
                    return np.where(count > 0, self.max[dev].max(axis=1), np.nan)

    def state(self) -> dict[str, npt.NDArray[Any]]:
        """Count, the one statistic the aggregation reads, and what held (a checkpoint
        carries every rule's panes, so only what is read is saved)."""
        stat = {"avg": "sum", "sum": "sum", "min": "min", "max": "max"}.get(
            self.cond.aggregation or ""
        )
        out = {"cur": np.array([self.cur], np.int64), "cnt": self.cnt, "held": self.held}
        if stat is not None:
            out[stat] = getattr(self, stat)
        return out

    def restore(self, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        if arrays["cnt"].shape[1] != self.n:
            return  # the window changed shape: start afresh
        self.cur = int(arrays["cur"][0])
        self.cnt, self.held = arrays["cnt"].copy(), arrays["held"].copy()
        size = len(self.cnt)
        self.sum = arrays["sum"].copy() if "sum" in arrays else np.zeros((size, self.n))
        self.min = arrays["min"].copy() if "min" in arrays else np.full((size, self.n), np.inf)
        self.max = arrays["max"].copy() if "max" in arrays else np.full((size, self.n), -np.inf)


@dataclass(slots=True)
class _StepContext:
    member: Bools
    truth: npt.NDArray[np.int8]


class RuleEvaluator:
    """The state of one rule over every device of the engine's device table."""

    def __init__(self, rule: Rule, since_ms: int) -> None:
        self.rule = rule
        self.since_ms = since_ms  # noData counts from here for devices never seen
        k = len(rule.conditions)
        self.truth = np.full((0, k), _UNKNOWN, np.int8)
        self.active = np.zeros(0, bool)
        self.member = np.zeros(0, bool)
        self.last_seen = np.zeros(0, np.int64)  # -1: never
        self.location = np.full((0, 2), np.nan)  # the device's latest (lat, lon)
        self.center = np.full((0, 2), np.nan)  # its geofence centre (property-defined)
        self.panes = {
            i: Panes(c, i)
            for i, c in enumerate(rule.conditions)
            if isinstance(c, TelemetryCondition) and c.aggregation is not None
        }

    @property
    def size(self) -> int:
        return len(self.active)

    def grow(self, size: int) -> None:
        extra = size - self.size
        if extra <= 0:
            return
        k = self.truth.shape[1]
        self.truth = np.vstack([self.truth, np.full((extra, k), _UNKNOWN, np.int8)])
        self.active = np.concatenate([self.active, np.zeros(extra, bool)])
        self.member = np.concatenate([self.member, np.zeros(extra, bool)])
        self.last_seen = np.concatenate([self.last_seen, np.full(extra, -1, np.int64)])
        self.location = np.vstack([self.location, np.full((extra, 2), np.nan)])
        self.center = np.vstack([self.center, np.full((extra, 2), np.nan)])
        for panes in self.panes.values():
            panes.grow(size)

    def set_members(self, member: Bools, now_ms: int) -> list[Transition]:
        """New membership; devices that left while the rule held for them resolve."""
        self.grow(len(member))
        mask = np.zeros(self.size, bool)
        mask[: len(member)] = member
        left = np.flatnonzero(self.active & ~mask)
        self.member = mask
        self.truth[left] = _UNKNOWN
        self.active[left] = False
        return [Transition(self.rule.id, int(d), now_ms, False) for d in left]

    def step(
        self,
        cols: Columns | None,
        watermark_ms: int,
        props: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> list[Transition]:
        """Feed a batch (or None), property changes by device, and move time to the watermark."""
        ev = _Events()
        if cols is not None and len(cols):
            self.grow(int(cols.device.max()) + 1)
        ctx = _StepContext(self.member, self.truth)
        if cols is not None and len(cols):
            self._messages(cols, ev, ctx)
        if props:
            self._properties(props, watermark_ms, ev)
        for panes in self.panes.values():
            if panes.cur >= 0:
                panes.advance(watermark_ms // panes.pane_ms, ev, ctx)
        self._silence(watermark_ms, ev)
        return self._combine(ev)

    # -- event sources ---------------------------------------------------------------
    def _messages(self, cols: Columns, ev: _Events, ctx: _StepContext) -> None:
        member: Bools = self.member[cols.device]
        if not member.any():
            return
        # The usual case, every message's device a member: no copies of the batch.
        rows: Bools | slice = slice(None) if member.all() else member
        dev, ts = cols.device[rows], cols.ts[rows]
        for k, cond in enumerate(self.rule.conditions):
            if isinstance(cond, TelemetryCondition):
                self._telemetry(k, cond, cols, rows, dev, ts, ev, ctx)
            elif isinstance(cond, GeofenceCondition) and cond.source != "property":
                self._located(k, cond, cols, rows, dev, ts, ev)
            elif isinstance(cond, NoDataCondition):
                np.maximum.at(self.last_seen, dev, ts)
                seen = np.flatnonzero(self.last_seen >= ts.min())
                ev.add(seen, self.last_seen[seen], k, np.zeros(len(seen), np.int8))

    def _telemetry(
        self,
        k: int,
        cond: TelemetryCondition,
        cols: Columns,
        rows: Bools | slice,
        dev: Ints,
        ts: Ints,
        ev: _Events,
        ctx: _StepContext,
    ) -> None:
        numeric = isinstance(cond.value, float)
        key = (cond.field.component, cond.field.name, "num" if numeric else "text")
        values = cols.values[key][rows]
        has = ~np.isnan(values) if numeric else np.array([v is not None for v in values], bool)
        if not has.any():
            return
        if not has.all():
            dev, ts, values = dev[has], ts[has], values[has]
        if k in self.panes:
            self.panes[k].add(dev, ts, values.astype(np.float64, copy=False), ev, ctx)
        else:
            truth = compare(values, cond.operator, cond.value)
            d, t, tr = reduce_per_device(dev, ts, truth, self.size)
            ev.add(d, t, k, tr)

    def _located(
        self,
        k: int,
        cond: GeofenceCondition,
        cols: Columns,
        rows: Bools | slice,
        dev: Ints,
        ts: Ints,
        ev: _Events,
    ) -> None:
        lat = cols.values[(cond.location.component, cond.location.name, "lat")][rows]
        lon = cols.values[(cond.location.component, cond.location.name, "lon")][rows]
        has = ~np.isnan(lat) & ~np.isnan(lon)
        dev, ts, lat, lon = dev[has], ts[has], lat[has], lon[has]
        if len(dev) == 0:
            return
        self.location[dev, 0], self.location[dev, 1] = lat, lon  # the last one wins
        self._fence(k, cond, dev, ts, lat, lon, ev)

    def _fence(
        self,
        k: int,
        cond: GeofenceCondition,
        dev: Ints,
        t: Ints | int,
        lat: Floats,
        lon: Floats,
        ev: _Events,
    ) -> None:
        if isinstance(cond.center, LatLon):
            clat = np.full(len(dev), cond.center.lat)
            clon = np.full(len(dev), cond.center.lon)
        else:
            clat, clon = self.center[dev, 0], self.center[dev, 1]
        known = ~np.isnan(clat)
        if isinstance(t, np.ndarray):
            t = t[known]
        outside = haversine_m(lat[known], lon[known], clat[known], clon[known]) > cond.radius_m
        if isinstance(t, np.ndarray):
            d, tt, tr = reduce_per_device(dev[known], t, outside, self.size)
            ev.add(d, tt, k, tr)
        else:
            ev.add(dev[known], t, k, outside)

    def _properties(self, props: Mapping[int, Mapping[str, Any]], now_ms: int, ev: _Events) -> None:
        """Per changed device (a cold path: properties change rarely)."""
        self.grow(max(props) + 1)
        devices = [d for d in props if self.member[d]]
        if not devices:
            return
        for k, cond in enumerate(self.rule.conditions):
            if isinstance(cond, PropertyCondition):
                truths = [
                    _scalar_truth(_value(props[d], cond.field), cond.operator, cond.value)
                    for d in devices
                ]
                known = [(d, t) for d, t in zip(devices, truths, strict=True) if t != _UNKNOWN]
                if known:
                    dev, tr = zip(*known, strict=True)
                    ev.add(np.array(dev, np.int64), now_ms, k, np.array(tr))
            elif isinstance(cond, GeofenceCondition):
                self._property_fence(k, cond, devices, props, now_ms, ev)

    def _property_fence(
        self,
        k: int,
        cond: GeofenceCondition,
        devices: list[int],
        props: Mapping[int, Mapping[str, Any]],
        now_ms: int,
        ev: _Events,
    ) -> None:
        for d in devices:
            if isinstance(cond.center, FieldRef):
                point = point_of(_value(props[d], cond.center))
                self.center[d] = point if point is not None else (np.nan, np.nan)
            if cond.source == "property":
                point = point_of(_value(props[d], cond.location))
                self.location[d] = point if point is not None else (np.nan, np.nan)
        dev = np.array(devices, np.int64)
        located = ~np.isnan(self.location[dev, 0])
        dev = dev[located]
        self._fence(k, cond, dev, now_ms, self.location[dev, 0], self.location[dev, 1], ev)

    def _silence(self, watermark_ms: int, ev: _Events) -> None:
        for k, cond in enumerate(self.rule.conditions):
            if isinstance(cond, NoDataCondition):
                deadline = np.maximum(self.last_seen, self.since_ms) + cond.duration_ms
                due = np.flatnonzero(
                    self.member & (self.truth[:, k] != 1) & (deadline <= watermark_ms)
                )
                ev.add(due, deadline[due], k, np.ones(len(due), np.int8))

    # -- combination -----------------------------------------------------------------
    def _combine(self, ev: _Events) -> list[Transition]:
        if not ev.dev:
            return []
        dev, t = np.concatenate(ev.dev), np.concatenate(ev.t)
        k, val = np.concatenate(ev.k), np.concatenate(ev.truth)
        order = np.lexsort((np.arange(len(dev)), t, dev))
        dev, t, k, val = dev[order], t[order], k[order], val[order]
        n, kk = len(dev), self.truth.shape[1]
        pos = np.arange(n)
        first = np.r_[True, dev[1:] != dev[:-1]]
        start = np.maximum.accumulate(np.where(first, pos, 0))
        cols = np.empty((n, kk), np.int8)
        for j in range(kk):
            mine = k == j
            last = np.maximum.accumulate(np.where(mine, pos, -1))
            carried = last >= start
            cols[:, j] = np.where(carried, val[np.maximum(last, 0)], self.truth[dev, j])
        held = (cols == 1).all(axis=1) if self.rule.match == "all" else (cols == 1).any(axis=1)
        before = np.where(first, self.active[dev], np.r_[False, held[:-1]])
        edges = np.flatnonzero(held != before)
        final = np.r_[first[1:], True]  # the last event of each device
        self.truth[dev[final]] = cols[final]
        self.active[dev[final]] = held[final]
        return [
            Transition(
                self.rule.id, int(dev[i]), int(t[i]), bool(held[i]), tuple(int(x) for x in cols[i])
            )
            for i in edges
        ]

    # -- persistence -----------------------------------------------------------------
    def state(self) -> dict[str, npt.NDArray[Any]]:
        out: dict[str, npt.NDArray[Any]] = {
            "truth": self.truth,
            "active": self.active,
            "since": np.array([self.since_ms], np.int64),
        }
        kinds = {type(c) for c in self.rule.conditions}
        if NoDataCondition in kinds:
            out["last_seen"] = self.last_seen
        if GeofenceCondition in kinds:
            out["location"], out["center"] = self.location, self.center
        for k, panes in self.panes.items():
            out.update({f"panes{k}.{name}": a for name, a in panes.state().items()})
        return out

    def restore(self, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        if arrays["truth"].shape[1] != self.truth.shape[1]:
            return
        self.grow(len(arrays["active"]))
        size = len(arrays["active"])
        self.truth[:size] = arrays["truth"]
        self.active[:size] = arrays["active"]
        if "last_seen" in arrays:
            self.last_seen[:size] = arrays["last_seen"]
        if "location" in arrays:
            self.location[:size] = arrays["location"]
            self.center[:size] = arrays["center"]
        self.since_ms = int(arrays["since"][0])
        for k, panes in self.panes.items():
            prefix = f"panes{k}."
            mine = {name[len(prefix) :]: a for name, a in arrays.items() if name.startswith(prefix)}
            if mine:
                panes.restore(mine)
                panes.grow(self.size)


def _value(props: Mapping[str, Any], ref: FieldRef) -> Any:
    return props.get(ref.text)


def is_clock_driven(cond: Condition) -> bool:
    return isinstance(cond, NoDataCondition) or (
        isinstance(cond, TelemetryCondition) and cond.aggregation is not None
    )
