"""Robust per-device baselines and CUSUM drift detection, in plain Python.

For each device and feature:

1. **Hourly aggregation.** Readings are reduced to one point per hour: the *median* of
   the feature (robust to a door left open, a defrost, a just-started compressor) and
   the mean of its covariate (ambient temperature, load). An hour with fewer than
   ``min_samples`` readings is skipped.
2. **Baseline.** The first ``warmup_hours`` of points fit ``x ≈ a + b·covariate`` by
   least squares (just ``a`` = the median without a covariate); the residual scale is
   1.4826 × MAD (a robust σ), floored at ``min_scale``. Each device learns its own
   normal, so a cooler with a naturally high condenser lift is not an anomaly.
3. **CUSUM.** ``S = max(0, S + z − k)`` with ``z`` the residual in scale units; an anomaly
   is raised when ``S > h``. Page's CUSUM is the fastest detector of a persistent mean
   shift for a given false-alarm rate, which is what wear looks like; ``k`` is half the
   shift worth catching (in σ), ``h`` sets the false-alarm rate. After an alarm the
   feature stays quiet for ``rearm_hours``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Anomaly", "DetectorConfig", "Feature", "FleetDetector", "fit_baseline"]

HOUR_S = 3600.0
MAD_TO_SIGMA = 1.4826

Reading = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    warmup_hours: int = 48
    k: float = 0.5  # allowance: drifts below ~1 σ are ignored
    h: float = 12.0  # decision threshold (σ·hours of accumulated excess)
    min_scale: float = 0.25
    min_samples: int = 2
    rearm_hours: float = 24.0


@dataclass(frozen=True, slots=True)
class Feature:
    """A quantity to watch: ``value`` of a reading (None: not usable), its covariate."""

    name: str
    value: Callable[[Reading], float | None]
    covariate: Callable[[Reading], float | None] | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Anomaly:
    device_id: str
    feature: str
    at: float  # epoch seconds: the end of the hour that crossed the threshold
    score: float  # the CUSUM statistic
    value: float  # the hour's median
    expected: float  # what the baseline predicted
    description: str = ""

    def detail(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "score": round(self.score, 2),
            "value": round(self.value, 3),
            "expected": round(self.expected, 3),
            "description": self.description,
        }


class FleetDetector:
    """Feeds readings of many devices through the features; returns the anomalies."""

    def __init__(self, features: Sequence[Feature], config: DetectorConfig | None = None):
        self.features = tuple(features)
        self.config = config or DetectorConfig()
        self._states: dict[tuple[str, str], _Series] = {}

    def feed(self, device_id: str, ts: float, reading: Reading) -> list[Anomaly]:
        found = []
        for feature in self.features:
            value = feature.value(reading)
            if value is None:
                continue
            cov = feature.covariate(reading) if feature.covariate else 0.0
            if cov is None:
                continue
            series = self._states.get((device_id, feature.name))
            if series is None:
                series = self._states[(device_id, feature.name)] = _Series(feature, self.config)
            anomaly = series.add(device_id, ts, value, cov)
            if anomaly is not None:
                found.append(anomaly)
        return found

    def baseline(self, device_id: str, feature: str) -> tuple[float, float, float] | None:
        series = self._states.get((device_id, feature))
        return series.fit if series else None


class _Series:
    """Hourly buckets → baseline → CUSUM, for one device and feature."""

    def __init__(self, feature: Feature, config: DetectorConfig) -> None:
        self.feature = feature
        self.config = config
        self.hour: int | None = None
        self.values: list[float] = []
        self.covs: list[float] = []
        self.warmup: list[tuple[float, float]] = []
        self.fit: tuple[float, float, float] | None = None
        self.cusum = 0.0
        self.quiet_until = 0.0

    def add(self, device_id: str, ts: float, value: float, cov: float) -> Anomaly | None:
        hour = int(ts // HOUR_S)
        anomaly = None
        if self.hour is not None and hour != self.hour:
            anomaly = self._close(device_id, (self.hour + 1) * HOUR_S)
            self.values, self.covs = [], []
        self.hour = hour
        self.values.append(value)
        self.covs.append(cov)
        return anomaly

    def _close(self, device_id: str, end: float) -> Anomaly | None:
        if len(self.values) < self.config.min_samples:
            return None
        x, c = statistics.median(self.values), statistics.fmean(self.covs)
        if self.fit is None:
            self.warmup.append((x, c))
            if len(self.warmup) >= self.config.warmup_hours:
                self.fit = fit_baseline(self.warmup, self.config.min_scale)
            return None
        a, b, scale = self.fit
        expected = a + b * c
        self.cusum = max(0.0, self.cusum + (x - expected) / scale - self.config.k)
        if self.cusum <= self.config.h or end < self.quiet_until:
            return None
        score, self.cusum = self.cusum, 0.0
        self.quiet_until = end + self.config.rearm_hours * HOUR_S
        return Anomaly(
            device_id, self.feature.name, end, score, x, expected, self.feature.description
        )


def fit_baseline(
    points: Sequence[tuple[float, float]], min_scale: float
) -> tuple[float, float, float]:
    """Least-squares ``x ≈ a + b·c`` and the robust scale of its residuals."""
    xs, cs = [p[0] for p in points], [p[1] for p in points]
    c_mean, x_mean = statistics.fmean(cs), statistics.fmean(xs)
    var = sum((c - c_mean) ** 2 for c in cs)
    slope = sum((c - c_mean) * (x - x_mean) for x, c in points) / var if var > 1e-9 else 0.0
    intercept = x_mean - slope * c_mean
    residuals = [x - intercept - slope * c for x, c in points]
    centre = statistics.median(residuals)
    mad = statistics.median(abs(r - centre) for r in residuals)
    return intercept + centre, slope, max(min_scale, MAD_TO_SIGMA * mad)
