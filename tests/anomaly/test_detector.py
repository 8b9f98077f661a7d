"""The drift detector: quiet on a healthy device, early on a degrading one."""

from __future__ import annotations

from aislehub.bench.anomaly import AnomalyOptions, render_anomaly_table, run_anomaly_bench
from aislehub.intelligence.detector import DetectorConfig, Feature, FleetDetector, fit_baseline


def test_baseline_fit_is_robust_to_outliers() -> None:
    points = [(10.0 + 0.5 * c + (-1) ** c * 0.2, c) for c in range(40)]
    a, b, scale = fit_baseline(points, 0.05)
    assert abs(b - 0.5) < 0.01 and abs(a - 10) < 0.3 and scale < 0.4
    flat = [(20.0 + (-1) ** i * 0.2, 0.0) for i in range(40)] + [(500.0, 0.0)] * 3
    a, b, scale = fit_baseline(flat, 0.05)
    assert b == 0.0 and scale < 0.7  # the residual scale ignores a few wild hours


def test_cusum_flags_a_drift_and_not_noise() -> None:
    feature = Feature("x", lambda r: r["x"])
    detector = FleetDetector([feature], DetectorConfig(warmup_hours=24, h=8))
    found = []
    for minute in range(24 * 60 * 6):
        hour = minute // 60
        drift = max(0.0, (hour - 72) * 0.1)
        wiggle = 0.3 * ((minute * 7919) % 13 - 6) / 6
        found += detector.feed("d", minute * 60.0, {"x": 20 + wiggle + drift})
    assert found and all(a.at > 72 * 3600 for a in found)
    assert found[0].at < 96 * 3600  # within a day of the drift's start


def test_bench_anomaly_smoke() -> None:
    figures = run_anomaly_bench(AnomalyOptions(devices=4, days=26, interval_s=900, fault_share=0.5))
    cooler = figures["scenarios"][0]
    assert cooler["faulted"] == 2 and cooler["cusum"]["recall"] == 1.0
    assert "cusum" in render_anomaly_table(figures)


def test_bench_simulate_smoke() -> None:
    from aislehub.bench.simulate import render_simulate_table, run_simulate_bench

    figures = run_simulate_bench(20, 3.0)
    assert figures["connected"] == 20 and figures["failed"] == 0
    assert figures["achieved_msg_per_s"] > 0
    assert "one core sustains" in render_simulate_table(figures)
