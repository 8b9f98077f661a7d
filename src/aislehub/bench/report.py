"""The ingest figures as one JSON object or as a table for people."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["render_json", "render_table"]

_ROWS = (
    ("acked msg/s", "acked_per_s"),
    ("acked msg/s, drain incl.", "acked_per_s_to_drain"),
    ("stored msg/s", "stored_per_s"),
    ("acked in window", "acked_in_window"),
    ("stored", "stored"),
    ("store caught up after (s)", "caught_up_s"),
    ("publish→queryable p50 (ms)", "latency_p50_ms"),
    ("publish→queryable p99 (ms)", "latency_p99_ms"),
    ("latency samples / missed", ("latency_samples", "latency_missed")),
    ("latest-value API p50 (ms)", "api_latest_p50_ms"),
    ("latest-value API p99 (ms)", "api_latest_p99_ms"),
    ("PUBACK p50 (ms)", "puback_p50_ms"),
    ("PUBACK p99 (ms)", "puback_p99_ms"),
    ("connections (failed)", ("connections", "connect_failures")),
    ("connect time (s)", "connect_s"),
    ("setup incl. spawn (s)", "setup_s"),
    ("connections lost", "lost_connections"),
    ("subscriber received", "subscriber_received"),
)


def render_json(figures: dict[str, Any]) -> str:
    return json.dumps(figures, sort_keys=False)


def render_table(figures: dict[str, Any]) -> str:
    names = ("plain", "tls", "typed", "scale_plain", "scale_tls", "mosquitto")
    columns = [(name, figures[name]) for name in names if figures.get(name)]
    head = (
        f"ingest: {figures['devices']} devices, {figures['seconds']:g} s per run, "
        f"{figures['processes']} generator processes, window {figures['window']}, "
        f"QoS 1, on {figures['host']}"
    )
    lines = [head, "", f"{'':30}" + "".join(f"{name:>14}" for name, _ in columns)]
    for label, key in _ROWS:
        cells = [_cell(col, key) for _, col in columns]
        if any(c != "-" for c in cells):
            lines.append(f"{label:30}" + "".join(f"{c:>14}" for c in cells))
    lines += [
        "",
        f"server peak RSS: {figures.get('peak_rss_mb')} MiB",
        f"publish→queryable over all runs: p50 {figures.get('latency_p50_ms')} ms, "
        f"p99 {figures.get('latency_p99_ms')} ms",
        f"aislehub plain / mosquitto: {_ratio(figures.get('ratio'))}",
        f"aislehub TLS / mosquitto plain: {_ratio(figures.get('ratio_tls'))}",
        f"typed / untyped (plain): {_ratio(figures.get('typed_ratio'))} (target >= 0.90)",
    ]
    if figures.get("scale"):
        scale = figures["scale"]
        lines += [
            f"scale_*: serve --workers {scale['workers']} on PostgreSQL + NATS JetStream, "
            f"peak RSS of all workers {scale.get('peak_rss_mb')} MiB",
            f"scale-out plain / embedded plain: {_ratio(figures.get('scale_ratio'))} "
            "(target >= 1.0)",
        ]
    errors = [e for _, col in columns for e in col.get("errors") or []]
    if errors:
        lines += ["", "first errors:", *(f"  {e}" for e in errors[:5])]
    return "\n".join(lines)


def _cell(column: dict[str, Any], key: str | tuple[str, str]) -> str:
    if isinstance(key, tuple):
        a, b = (column.get(k) for k in key)
        return "-" if a is None else f"{a} / {b}"
    value = column.get(key)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _ratio(value: float | None) -> str:
    return "n/a (no reference run)" if value is None else f"{value:.2f}"
