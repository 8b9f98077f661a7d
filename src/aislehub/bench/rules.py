"""``aislehub bench rules``: 100 rules over the ingest benchmark's load.

Steps, on one loopback address of our own:
1. a fresh install with N load devices and one *alarm* device, all on the bench template
   (``bench.ingest``), then ``aislehub serve``;
2. the ingest load over plain MQTT without rules (the reference, in the same run);
3. 100 rules over the template: a quarter per-message thresholds, a quarter 2 s tumbling
   averages, a quarter 5 s tumbling maxima, a quarter 5 s sliding maxima; the load devices
   never cross their thresholds, so every rule evaluates every message and raises nothing;
4. the same load again with the rules, while the alarm device alternates 3 s hot and 7 s
   cold, so every rule opens and resolves an alert each cycle;
5. steps 2-4 ``rounds`` times, the rules disabled and enabled again between phases, in the
   order without-with, with-without, ... (ABBA), so a steady change of the machine's load or
   the server's state during the run (the store grows with every phase, and measured
   phases got 5-25 % slower one after another) falls on both sides equally;
6. ingest rate with and without rules, the mean over the rounds (target: < 10 % loss), the
   server's CPU time per message in each phase and the rules engine's part of it (its
   own count of the CPU it used, exported on ``/metrics``), and, from every alert, the
   condition-to-alert latency: from the condition's time (the message, or the window's end)
   to the transaction that recorded the alert (target: p99 < 2 s), both server clocks.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from aislehub.bench.ingest import (
    BENCH_TEMPLATE,
    DEVICE_PREFIX,
    PROBE_DEVICE,
    IngestOptions,
    _aislehub_phase,
    _type_devices,
)
from aislehub.bench.server import BenchServer, pick_loopback
from aislehub.bench.stats import percentile
from aislehub.bench.wire import connect_packet
from aislehub.protocol.mqtt import Publish, encode_packet

__all__ = ["RulesOptions", "phase_order", "run_rules_bench"]

ALARM_DEVICE = f"{DEVICE_PREFIX}alarm"  # on the template (its prefix), outside the load
HOT, COLD = 3.0, 7.0  # seconds of the alarm device's cycle
API = {"api-version": "2022-07-31"}


@dataclass(frozen=True, slots=True)
class RulesOptions:
    devices: int = 1000
    seconds: float = 10.0
    processes: int = 2
    window: int = 20
    rules: int = 100
    rounds: int = 4
    verbose: bool = True


def rule_bodies(count: int, enabled: bool = True) -> list[dict[str, Any]]:
    shapes = [
        {},
        {"aggregation": "avg", "window": "PT2S"},
        {"aggregation": "max", "window": "PT5S"},
        {"aggregation": "max", "window": "PT5S", "windowType": "sliding"},
    ]
    return [
        {
            "displayName": f"bench rule {i}",
            "enabled": enabled,
            "severity": "warning",
            "target": {"template": BENCH_TEMPLATE},
            "conditions": {
                "items": [
                    {
                        "type": "telemetry",
                        "field": "temperature",
                        "operator": ">",
                        "value": 1000 + i,
                        **shapes[i % len(shapes)],
                    }
                ]
            },
        }
        for i in range(count)
    ]


def run_rules_bench(opts: RulesOptions) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="aislehub-bench-rules-"))
    try:
        figures = _run_in(work, opts)
    except BaseException:
        print(f"bench: failed; install and server log kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    return figures


def _say(opts: RulesOptions, text: str) -> None:
    if opts.verbose:
        print(f"bench: {text}", file=sys.stderr, flush=True)


def _run_in(work: Path, opts: RulesOptions) -> dict[str, Any]:
    host = pick_loopback(7)
    ids = tuple(f"{DEVICE_PREFIX}{i:06d}" for i in range(opts.devices))
    server = BenchServer.create(work / "install", host)
    server.add_devices([*ids, ALARM_DEVICE, PROBE_DEVICE])
    load = IngestOptions(
        devices=opts.devices,
        seconds=opts.seconds,
        processes=opts.processes,
        window=opts.window,
        verbose=opts.verbose,
    )
    figures: dict[str, Any] = {"devices": opts.devices, "seconds": opts.seconds, "rules": 0}
    without: list[dict[str, Any]] = []
    with_rules: list[dict[str, Any]] = []
    server.start()
    try:
        _type_devices(server)
        enabled = False
        for n, rules_on in enumerate(phase_order(opts.rounds)):
            if rules_on != enabled:
                figures["rules"] = _put_rules(server, opts.rules, enabled=rules_on)
                enabled = rules_on
                time.sleep(1.5)  # hot reload: applied within a second
            if not rules_on:
                _say(opts, f"phase {n + 1}: without rules, {opts.seconds:g} s of load")
                without.append(_phase(server, ids, load, f"norules{n}"))
                continue
            _say(opts, f"phase {n + 1}: {opts.rules} rules, the same load and the alarm device")
            with _Alarm(server) as alarm:
                with_rules.append(_phase(server, ids, load, f"rules{n}"))
                alarm.finish_cycle()
            figures["rules_caught_up_s"] = _wait_rules_caught_up(server, 60.0)
        figures.update(_latency(server))
    finally:
        server.stop()
    figures["without"], figures["with"] = _mean(without), _mean(with_rules)
    w, r = figures["without"]["acked_per_s"], figures["with"]["acked_per_s"]
    figures["ratio"] = round(r / w, 3) if w else None
    figures["loss_pct"] = round(100 * (1 - r / w), 1) if w else None
    return figures


def phase_order(rounds: int) -> list[bool]:
    """Whether each phase runs with the rules: rounds alternate without-with and
    with-without (ABBA), so a steady drift of the machine or the server (a store growing
    by every phase) weighs on both sides equally instead of always on the second."""
    order: list[bool] = []
    for n in range(rounds):
        order += [False, True] if n % 2 == 0 else [True, False]
    return order


def _phase(
    server: BenchServer, ids: tuple[str, ...], load: IngestOptions, name: str
) -> dict[str, Any]:
    """One load phase's rates, and CPU time per thousand acknowledged messages: the
    server's (less sensitive than the rates to what else runs on the machine) and, of
    it, the rules engine's own (``aislehub_rules_cpu_seconds_total``)."""
    cpu, rules_cpu = _cpu_seconds(server), _metric(server, "rules_cpu_seconds_total")
    phase = _aislehub_phase(server, ids, load, name)
    used, rules_used = _cpu_seconds(server), _metric(server, "rules_cpu_seconds_total")
    figures = _rate(phase)
    acked = phase.get("acked") or 0
    if cpu is not None and used is not None and acked:
        figures["server_cpu_ms_per_1k"] = round(1e6 * (used - cpu) / acked, 1)
    if rules_cpu is not None and rules_used is not None and acked:
        figures["rules_cpu_ms_per_1k"] = round(1e6 * (rules_used - rules_cpu) / acked, 2)
    return figures


def _mean(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean of each figure over the rounds, and the rounds themselves."""
    out: dict[str, Any] = {}
    for key in phases[0]:
        values = [p[key] for p in phases if p.get(key) is not None]
        out[key] = round(sum(values) / len(values), 2) if values else None
    out["rounds"] = phases
    return out


def _cpu_seconds(server: BenchServer) -> float | None:
    """User + system CPU time of the server process so far (Linux), else None."""
    if server.proc is None:
        return None
    try:
        fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _rate(phase: dict[str, Any]) -> dict[str, Any]:
    keys = ("acked_per_s", "drained_per_s", "latency_p50_ms", "latency_p99_ms", "caught_up_s")
    return {k: phase.get(k) for k in keys}


def _client(server: BenchServer) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.api_base}/api",
        params=API,
        headers={"Authorization": server.api_token},
        timeout=30,
    )


def _put_rules(server: BenchServer, count: int, enabled: bool = True) -> int:
    with _client(server) as api:
        for i, body in enumerate(rule_bodies(count, enabled)):
            api.put(f"/rules/bench-{i:03d}", json=body).raise_for_status()
    return count


def _metric(server: BenchServer, name: str) -> float | None:
    text = httpx.get(f"{server.api_base}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f"aislehub_{name} ") or line.startswith(f"aislehub_{name}{{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def _wait_rules_caught_up(server: BenchServer, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if _metric(server, "rules_lag_records") == 0:
            return round(time.monotonic() - started, 2)
        time.sleep(0.2)
    return None


def _latency(server: BenchServer) -> dict[str, Any]:
    """Condition-to-alert latency of every alert the alarm device raised."""
    samples: list[float] = []
    by_kind: dict[str, list[float]] = {}
    with _client(server) as api:
        page: dict[str, Any] = api.get("/alerts", params={"maxpagesize": 100}).json()
        alerts = list(page["value"])
        while "nextLink" in page:
            page = httpx.get(
                page["nextLink"], headers={"Authorization": server.api_token}, timeout=30
            ).json()
            alerts += page["value"]
    for alert in alerts:
        detail = alert["detail"]
        lag = _parse(detail["recordedAt"]) - _parse(detail["conditionAt"])
        samples.append(lag)
        index = int(alert["rule"].rsplit("-", 1)[1]) % 4
        kind = ("message", "tumbling-2s", "tumbling-5s", "sliding-5s")[index]
        by_kind.setdefault(kind, []).append(lag)
    return {
        "alerts": len(alerts),
        "alert_devices": sorted({a["device"] for a in alerts}),
        "alert_latency_p50_ms": _ms(percentile(samples, 50)),
        "alert_latency_p99_ms": _ms(percentile(samples, 99)),
        "alert_latency_max_ms": _ms(max(samples, default=None)),
        "alert_latency_p99_ms_by_kind": {k: _ms(percentile(v, 99)) for k, v in by_kind.items()},
    }


def _parse(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


class _Alarm:
    """The alarm device: 2 messages a second, ``HOT`` s at 2000 °C then ``COLD`` s at 0."""

    def __init__(self, server: BenchServer) -> None:
        self._target = server.target(False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alarm device", daemon=True)
        self._sock: socket.socket | None = None

    def __enter__(self) -> _Alarm:
        sock = socket.create_connection((self._target.host, self._target.port), 10)
        sock.sendall(connect_packet(self._target.dialect, ALARM_DEVICE))
        sock.recv(4)  # CONNACK
        self._sock = sock
        self._started = time.monotonic()
        self._thread.start()
        threading.Thread(target=self._drain, name="alarm acks", daemon=True).start()
        return self

    def finish_cycle(self) -> None:
        """Run on until the current cycle's cold part has lasted a full window and more."""
        cycle = HOT + COLD
        elapsed = (time.monotonic() - self._started) % cycle
        time.sleep(cycle - elapsed + 1.0)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._sock is not None:
            self._sock.close()

    def _drain(self) -> None:
        sock = self._sock
        while sock is not None and not self._stop.is_set():
            try:
                if not sock.recv(4096):
                    return
            except OSError:
                return

    def _run(self) -> None:
        packet_id = 0
        topic = f"devices/{ALARM_DEVICE}/messages/events/"
        while not self._stop.is_set() and self._sock is not None:
            hot = (time.monotonic() - self._started) % (HOT + COLD) < HOT
            packet_id = packet_id % 65535 + 1
            body = b'{"temperature": 2000}' if hot else b'{"temperature": 0}'
            try:
                self._sock.sendall(encode_packet(Publish(topic, body, 1, packet_id=packet_id)))
            except OSError:
                return
            self._stop.wait(0.5)


def render_rules_table(figures: dict[str, Any]) -> str:
    w, r = figures["without"], figures["with"]
    rows = [
        ("rules", str(figures["rules"])),
        ("ingest without rules (msg/s)", _per_round(w, "acked_per_s")),
        ("ingest with rules (msg/s)", _per_round(r, "acked_per_s")),
        ("loss (target < 10 %)", f"{figures['loss_pct']} %"),
        ("server CPU without rules (ms / 1k msgs)", _per_round(w, "server_cpu_ms_per_1k")),
        ("server CPU with rules (ms / 1k msgs)", _per_round(r, "server_cpu_ms_per_1k")),
        ("of which the rules engine (ms / 1k msgs)", _per_round(r, "rules_cpu_ms_per_1k", 2)),
        ("rules engine caught up after the load (s)", str(figures["rules_caught_up_s"])),
        ("alerts raised by the alarm device", str(figures["alerts"])),
        ("condition → alert p50 (ms)", str(figures["alert_latency_p50_ms"])),
        ("condition → alert p99 (ms, target < 2000)", str(figures["alert_latency_p99_ms"])),
        ("p99 by rule kind (ms)", str(figures["alert_latency_p99_ms_by_kind"])),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _per_round(phase: dict[str, Any], key: str, digits: int = 0) -> str:
    """The mean, then each round's figure in brackets."""
    mean = phase.get(key)
    if mean is None:
        return "-"
    rounds = [p.get(key) for p in phase.get("rounds", [])]
    each = ", ".join("-" if v is None else f"{v:,.{digits}f}" for v in rounds)
    return f"{mean:,.{digits}f}" + (f" ({each})" if len(rounds) > 1 else "")
