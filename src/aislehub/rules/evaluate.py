"""Rule evaluation over column batches: pure, no I/O, no clock (time is an argument).

Each condition of a rule is a step function of time per device: ``truth[device, k]`` is
-1 (unknown), 0 or 1. One :meth:`RuleEvaluator.step` turns a batch into *events*
``(device, t, k, truth)``, all as NumPy arrays:

- a per-message telemetry condition: one event per message carrying the field;
- an aggregate: one event per device when a *pane* closes. Panes are aligned to the epoch;
  a tumbling window is one pane, a sliding window ten panes of a tenth of it, evaluated
  each time a pane closes (so a sliding window moves in steps of window/10). Pane state is
  count and the sum, min or max per device, so every aggregate is mergeable. Rules whose
  conditions aggregate the same field of the same target over the same window (warning and
  critical thresholds, say) share one :class:`Window`: it folds each message once and
  computes the aggregate once per close, and each rule compares it with its threshold;
- a geofence over telemetry: one event per location message (haversine distance from the
  device's centre); over properties, one per property change;
- a property condition: one event per property change;
- ``noData``: false at every message, true at ``last seen + duration`` once the watermark
  passes it.

Events are sorted by (device, t), each condition's truth carried forward within a device,
combined with all/any (unknown counts as false), and compared with the previous combined
value: rising edges open alerts, falling edges resolve them. A step whose events only
repeat the current truths (most steps of most rules) changes nothing and sorts nothing.
Python work is per pane, per property change and per transition, never per message.

Time: a pane closes when the *watermark* passes its end. The engine sets the watermark to
the clock minus a grace period while it keeps up with the log, and to the newest message
time while it catches up, so a replay after a restart closes the same panes as live
evaluation did.
"""

from __future__ import annotations

import hashlib
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
    "Column",
    "Columns",
    "FieldKey",
    "RuleEvaluator",
    "Shared",
    "Transition",
    "Window",
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
    collapses into one episode; everything else is kept. No sort over the messages."""
    rows = merge_rows(first_rows(dev, truth), last_rows(dev, size))
    return dev[rows], ts[rows], truth[rows].astype(np.int8)


def first_rows(dev: Ints, truth: Bools) -> Ints:
    """The row of each device's first true message (sorts only the true ones)."""
    true = np.flatnonzero(truth)
    if len(true) == 0:  # the usual case
        return true
    d = dev[true]
    order = np.argsort(d, kind="stable")
    d = d[order]
    return np.sort(true[order][np.r_[True, d[1:] != d[:-1]]])


def last_rows(dev: Ints, size: int) -> Ints:
    """The row of each device's last message, ascending (one scatter)."""
    last = np.full(size, -1, np.int64)
    np.maximum.at(last, dev, np.arange(len(dev)))
    return np.sort(last[last >= 0])


def merge_rows(a: Ints, b: Ints) -> Ints:
    """The union of two ascending row arrays, ascending."""
    if len(a) == 0:
        return b
    rows = np.concatenate([a, b])
    rows.sort()
    return rows[np.r_[True, rows[1:] != rows[:-1]]]


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


class Window:
    """Count plus the statistic the aggregation reads, per device and pane, for every
    condition with the same signature (:func:`window_key`): rules that differ only in the
    threshold (warning / critical) fold each message once and read the same aggregates.

    Each :meth:`step` records the windows it closed, ``(end ms, counted, aggregate)`` per
    device (NaN where empty), for the rules to compare against their thresholds.
    """

    def __init__(self, cond: TelemetryCondition) -> None:
        assert cond.window_ms is not None and cond.aggregation is not None
        self.aggregation = cond.aggregation
        self.key: FieldKey = (cond.field.component, cond.field.name, "num")
        self.n = SLIDING_PANES if cond.window_type == "sliding" else 1
        self.pane_ms = max(1, cond.window_ms // self.n)
        self.cur = -1  # the open pane (epoch ms // pane_ms); -1: none yet
        self.cnt = np.zeros((0, self.n), np.int64)
        self.stat = np.zeros((0, self.n), np.float64)  # sum, min or max per pane
        self.closes: list[tuple[int, Bools, Floats]] = []  # this step's
        self.late = 0  # messages for panes already closed, dropped

    @property
    def _empty(self) -> float:
        return {"min": np.inf, "max": -np.inf}.get(self.aggregation, 0.0)

    def grow(self, size: int) -> None:
        extra = size - len(self.cnt)
        if extra > 0:
            self.cnt = np.vstack([self.cnt, np.zeros((extra, self.n), np.int64)])
            self.stat = np.vstack([self.stat, np.full((extra, self.n), self._empty)])

    def step(self, cols: Columns | None, member: Bools, watermark_ms: int) -> None:
        self.closes = []
        if cols is not None and len(cols):
            self.grow(len(member))
            v = cols.values[self.key]
            rows = member[cols.device] & ~np.isnan(v)
            if rows.all():  # the usual case: no copies of the batch
                self.add(cols.device, cols.ts, v)
            elif rows.any():
                self.add(cols.device[rows], cols.ts[rows], v[rows])
        if self.cur >= 0:
            self.advance(watermark_ms // self.pane_ms)

    def add(self, dev: Ints, ts: Ints, v: Floats) -> None:
        pane = ts // self.pane_ms
        low, high = int(pane.min()), int(pane.max())
        if self.cur < 0:
            self.cur = low
        if low == high:  # the usual case: a batch spans less than a pane
            self._pane(low, dev, v)
            return
        for p in np.unique(pane):
            rows = pane == p
            self._pane(int(p), dev[rows], v[rows])

    def _pane(self, p: int, dev: Ints, v: Floats) -> None:
        if p < self.cur:
            self.late += len(dev)
            return
        self.advance(p)
        s, size = self.cur % self.n, len(self.cnt)
        self.cnt[:, s] += np.bincount(dev, minlength=size)
        match self.aggregation:
            case "avg" | "sum":
                self.stat[:, s] += np.bincount(dev, weights=v, minlength=size)
            case "min":
                np.minimum.at(self.stat[:, s], dev, v)
            case "max":
                np.maximum.at(self.stat[:, s], dev, v)

    def advance(self, to: int) -> None:
        """Close panes until ``to`` is the open one, recording the window at each close."""
        while 0 <= self.cur < to:
            counted = self._close((self.cur + 1) * self.pane_ms)
            self.cur += 1
            if not counted:  # until new data every close repeats this empty window: skip
                self.cur = to
            s = self.cur % self.n
            self.cnt[:, s], self.stat[:, s] = 0, self._empty

    def _close(self, end_ms: int) -> bool:
        c = self.cnt.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            match self.aggregation:
                case "count":
                    value = c.astype(np.float64)
                case "sum":
                    value = np.where(c > 0, self.stat.sum(axis=1), np.nan)
                case "avg":
                    value = np.where(c > 0, self.stat.sum(axis=1) / c, np.nan)
                case "min":
                    value = np.where(c > 0, self.stat.min(axis=1), np.nan)
                case _:
                    value = np.where(c > 0, self.stat.max(axis=1), np.nan)
        counted = c > 0
        self.closes.append((end_ms, counted, value))
        return bool(counted.any())

    def state(self) -> dict[str, npt.NDArray[Any]]:
        """The layout a rule's own panes were saved in (``panes<k>.*``, before sharing)."""
        out: dict[str, npt.NDArray[Any]] = {"cur": np.array([self.cur], np.int64), "cnt": self.cnt}
        stat = {"avg": "sum", "sum": "sum", "min": "min", "max": "max"}.get(self.aggregation)
        if stat is not None:
            out[stat] = self.stat
        return out

    def restore(self, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        if arrays["cnt"].shape[1] != self.n:
            return  # the window changed shape: start afresh
        self.cur = int(arrays["cur"][0])
        self.cnt = arrays["cnt"].copy()
        stat = {"avg": "sum", "sum": "sum", "min": "min", "max": "max"}.get(self.aggregation)
        if stat is not None and stat in arrays:
            self.stat = arrays[stat].astype(np.float64, copy=True)
        else:
            self.stat = np.full(self.cnt.shape, self._empty)


class Column:
    """One numeric or text field of the messages of a target's members, with each device's
    last such message, once per step for every per-message condition on it."""

    def __init__(self, key: FieldKey) -> None:
        self.key = key
        self.dev: Ints = np.zeros(0, np.int64)
        self.ts: Ints = np.zeros(0, np.int64)
        self.values: npt.NDArray[Any] = np.zeros(0)
        self.last: Ints = np.zeros(0, np.int64)  # rows, ascending

    def step(self, cols: Columns | None, member: Bools, watermark_ms: int) -> None:
        self.dev = self.last = np.zeros(0, np.int64)
        if cols is None or not len(cols):
            return
        values = cols.values[self.key]
        has = ~np.isnan(values) if self.key[2] == "num" else _present(values)
        rows = member[cols.device] & has
        if rows.all():
            self.dev, self.ts, self.values = cols.device, cols.ts, values
        elif rows.any():
            self.dev, self.ts, self.values = cols.device[rows], cols.ts[rows], values[rows]
        else:
            return
        self.last = last_rows(self.dev, len(member))


def _present(values: npt.NDArray[Any]) -> Bools:
    return np.array([v is not None for v in values], bool)


def window_key(target: object, cond: TelemetryCondition) -> str:
    """What a window's panes depend on: the target (its device set), field, aggregation,
    window length and type; not the operator or threshold."""
    what = (target, cond.field, cond.aggregation, cond.window_ms, cond.window_type)
    return hashlib.sha256(repr(what).encode()).hexdigest()[:16]


class Shared:
    """Windows and columns shared by the conditions of several rules, reference-counted by
    the evaluators using them: a rule added, edited or removed (hot reload) takes or
    releases its references, and a signature nobody uses any more is dropped, so a new one
    starts empty. :meth:`step` feeds every entry once per batch, before the evaluators."""

    def __init__(self) -> None:
        self.entries: dict[str, Window | Column] = {}
        self.users: dict[str, list[RuleEvaluator]] = {}
        self.saved: dict[str, Mapping[str, npt.NDArray[Any]]] = {}  # windows of a checkpoint

    def window(self, user: RuleEvaluator, cond: TelemetryCondition) -> Window:
        key = window_key(user.rule.target, cond)
        if key not in self.entries:
            self.entries[key] = window = Window(cond)
            if (saved := self.saved.pop(key, None)) is not None:
                window.restore(saved)
        self.users.setdefault(key, []).append(user)
        entry = self.entries[key]
        assert isinstance(entry, Window)
        return entry

    def column(self, user: RuleEvaluator, field: FieldKey) -> Column:
        key = repr((user.rule.target, field))
        entry = self.entries.setdefault(key, Column(field))
        self.users.setdefault(key, []).append(user)
        assert isinstance(entry, Column)
        return entry

    def release(self, user: RuleEvaluator) -> None:
        for key in list(self.users):
            users = self.users[key] = [u for u in self.users[key] if u is not user]
            if not users:
                del self.users[key], self.entries[key]

    def step(self, cols: Columns | None, watermark_ms: int) -> None:
        size = int(cols.device.max()) + 1 if cols is not None and len(cols) else 0
        for key, entry in self.entries.items():
            users = self.users[key]
            member = np.zeros(max([size, *(u.size for u in users)]), bool)
            for u in users:  # the same target in every app: the union of their devices
                member[: u.size] |= u.member
            entry.step(cols, member, watermark_ms)

    def state(self) -> dict[str, dict[str, npt.NDArray[Any]]]:
        return {k: e.state() for k, e in self.entries.items() if isinstance(e, Window)}


class RuleEvaluator:
    """The state of one rule over every device of the engine's device table."""

    def __init__(self, rule: Rule, since_ms: int, shared: Shared | None = None) -> None:
        """``shared``: the windows and columns of the engine's other rules, which the
        engine steps once per batch before the evaluators; None: this rule's own, stepped
        by :meth:`step` (a rule evaluated alone)."""
        self.rule = rule
        self.own = shared is None
        self.shared = Shared() if shared is None else shared
        self.since_ms = since_ms  # noData counts from here for devices never seen
        k = len(rule.conditions)
        self.truth = np.full((0, k), _UNKNOWN, np.int8)
        self.active = np.zeros(0, bool)
        self.member = np.zeros(0, bool)
        self.last_seen = np.zeros(0, np.int64)  # -1: never
        self.location = np.full((0, 2), np.nan)  # the device's latest (lat, lon)
        self.center = np.full((0, 2), np.nan)  # its geofence centre (property-defined)
        self.windows: dict[int, Window] = {}
        self.held: dict[int, Bools] = {}  # per window: the condition held at its last close
        self.columns: dict[int, Column] = {}
        self.scans = any(
            isinstance(c, GeofenceCondition | NoDataCondition) for c in rule.conditions
        )
        for k, c in enumerate(rule.conditions):
            if isinstance(c, TelemetryCondition) and c.aggregation is not None:
                self.windows[k] = self.shared.window(self, c)
                self.held[k] = np.zeros(0, bool)
            elif isinstance(c, TelemetryCondition):
                kind = "num" if isinstance(c.value, float) else "text"
                self.columns[k] = self.shared.column(self, (c.field.component, c.field.name, kind))

    def close(self) -> None:
        """Release the shared windows and columns (the rule was removed or replaced)."""
        self.shared.release(self)

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
        for k, held in self.held.items():
            self.held[k] = np.concatenate([held, np.zeros(extra, bool)])

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
        if self.own:
            self.shared.step(cols, watermark_ms)
        if cols is not None and len(cols):
            self.grow(int(cols.device.max()) + 1)
            self._messages(cols, ev)
        for k, column in self.columns.items():
            self._compare(k, column, ev)
        if props:
            self._properties(props, watermark_ms, ev)
        for k, window in self.windows.items():
            self._windows(k, window, ev)
        self._silence(watermark_ms, ev)
        return self._combine(ev)

    # -- event sources ---------------------------------------------------------------
    def _messages(self, cols: Columns, ev: _Events) -> None:
        """Geofence and noData over the batch (telemetry: :meth:`_compare`, :meth:`_windows`)."""
        if not self.scans:
            return
        member: Bools = self.member[cols.device]
        if not member.any():
            return
        # The usual case, every message's device a member: no copies of the batch.
        rows: Bools | slice = slice(None) if member.all() else member
        dev, ts = cols.device[rows], cols.ts[rows]
        for k, cond in enumerate(self.rule.conditions):
            if isinstance(cond, GeofenceCondition) and cond.source != "property":
                self._located(k, cond, cols, rows, dev, ts, ev)
            elif isinstance(cond, NoDataCondition):
                np.maximum.at(self.last_seen, dev, ts)
                seen = np.flatnonzero(self.last_seen >= ts.min())
                ev.add(seen, self.last_seen[seen], k, np.zeros(len(seen), np.int8))

    def _compare(self, k: int, column: Column, ev: _Events) -> None:
        """A per-message condition: each device's first message that satisfies it and its
        last message (the latter shared by every rule on the column)."""
        if len(column.dev) == 0:
            return
        cond = self.rule.conditions[k]
        assert isinstance(cond, TelemetryCondition)
        truth = compare(column.values, cond.operator, cond.value)
        rows = merge_rows(first_rows(column.dev, truth), column.last)
        rows = rows[self.member[column.dev[rows]]]  # another app's devices share the column
        ev.add(column.dev[rows], column.ts[rows], k, truth[rows])

    def _windows(self, k: int, window: Window, ev: _Events) -> None:
        """The windows closed this step, against this rule's threshold."""
        cond = self.rule.conditions[k]
        assert isinstance(cond, TelemetryCondition)
        held = self.held[k]
        for end_ms, counted, value in window.closes:
            n = min(len(counted), self.size)
            dev = np.flatnonzero(self.member[:n] & (counted[:n] | held[:n]))
            if len(dev):
                holds = compare(value[dev], cond.operator, cond.value)
                held[dev] = holds
                ev.add(dev, end_ms, k, holds)

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
        if self._repeats(dev, k, val):
            return []
        order = np.lexsort((t, dev))  # stable: events at one time keep their order
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

    def _repeats(self, dev: Ints, k: Ints, val: npt.NDArray[np.int8]) -> bool:
        """Whether every event repeats its device's current truth, while the alert state
        matches those truths: then nothing changes (most steps, most rules), no sort."""
        if not (val == self.truth[dev, k]).all():
            return False
        held = self.truth[dev] == 1
        held_all = held.all(axis=1) if self.rule.match == "all" else held.any(axis=1)
        return bool((held_all == self.active[dev]).all())

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
        for k, window in self.windows.items():
            out[f"panes{k}.held"] = self.held[k]
            if self.own:  # else the engine saves each shared window once (Shared.state)
                out.update({f"panes{k}.{name}": a for name, a in window.state().items()})
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
        for k, window in self.windows.items():
            prefix = f"panes{k}."
            mine = {name[len(prefix) :]: a for name, a in arrays.items() if name.startswith(prefix)}
            if "held" in mine:
                held = mine["held"][: self.size]
                self.held[k][: len(held)] = held
            # A rule's own panes (its state alone, or a checkpoint from before windows were
            # shared) fill a window nobody has fed yet; rules sharing it had the same panes.
            if "cnt" in mine and window.cur < 0:
                window.restore(mine)


def _value(props: Mapping[str, Any], ref: FieldRef) -> Any:
    return props.get(ref.text)


def is_clock_driven(cond: Condition) -> bool:
    return isinstance(cond, NoDataCondition) or (
        isinstance(cond, TelemetryCondition) and cond.aggregation is not None
    )
