"""``aislehub bench ingest``: QoS 1 telemetry ingest, plain and TLS, beside Mosquitto.

Steps (DESIGN.md §6, first row), all on one loopback address of our own:

1. a fresh install in a temporary directory, N devices written straight into its metadata
   store, then ``aislehub serve`` as a subprocess;
2. the generator over plain MQTT for ``seconds`` (connections opened before the window),
   while the probe samples publish → queryable latency; then one more probe, whose
   arrival in the API means the store has caught up (the stored rate's end point);
3. the same over TLS with the install's CA;
4. the server's peak RSS, a clean SIGTERM stop, and the stored count per phase read from
   the DuckDB file;
5. the reference: our own Mosquitto with one QoS 1 subscriber, the same generator and
   devices, plain MQTT; the ratio is aislehub's plain acked rate over Mosquitto's;
6. with ``backend="scale"``: the plain (and TLS) phases again against ``serve --workers N``
   on fresh PostgreSQL databases and a fresh JetStream stream (:mod:`aislehub.bench.scale`),
   printed beside the embedded figures; ``scale_ratio`` is its plain acked rate over the
   embedded one.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from aislehub.bench.generator import START_DELAY, LoadResult, LoadSpec, run_load
from aislehub.bench.mosquitto import Mosquitto, mosquitto_available
from aislehub.bench.probe import LatencyProbe
from aislehub.bench.server import BenchServer, free_port, pick_loopback
from aislehub.bench.stats import ms, percentile, stored_by_phase, typing_figures
from aislehub.bench.subscriber import Subscriber
from aislehub.bench.wire import Dialect, Target

__all__ = ["IngestOptions", "run_ingest"]

DEVICE_PREFIX = "bench-"
PROBE_DEVICE = "probe-latency"  # outside DEVICE_PREFIX: not counted as load
CATCH_UP_TIMEOUT = 120.0  # seconds the store may take to drain after a phase
BENCH_TEMPLATE = "dtmi:aislehub:bench:CoolerTemplate;1"
BENCH_MODEL = "dtmi:aislehub:bench:Cooler;1"
CATALOG_SETTLE = 2.0  # seconds: the store writer polls for other processes' writes every 1 s


@dataclass(frozen=True, slots=True)
class IngestOptions:
    devices: int = 1000
    seconds: float = 10.0
    processes: int = 2
    window: int = 20
    tls: bool = True
    typed: bool = True
    reference: bool = True
    verbose: bool = True
    backend: str = "embedded"  # or "scale": also run on PostgreSQL + NATS with ``workers``
    workers: int = 2


def run_ingest(opts: IngestOptions) -> dict[str, Any]:
    """Run the scenario and return its figures (see :func:`aislehub.bench.report`)."""
    work = Path(tempfile.mkdtemp(prefix="aislehub-bench-"))
    try:
        figures = _run_in(work, opts)
    except BaseException:
        print(
            f"bench: failed; install, server log and mosquitto log kept in {work}", file=sys.stderr
        )
        raise
    shutil.rmtree(work, ignore_errors=True)
    return figures


def _run_in(work: Path, opts: IngestOptions) -> dict[str, Any]:
    host = pick_loopback()
    ids = tuple(f"{DEVICE_PREFIX}{i:06d}" for i in range(opts.devices))
    say = _say if opts.verbose else _quiet
    say(f"install on {host}, {opts.devices} devices")
    server = BenchServer.create(work / "install", host)
    server.add_devices([*ids, PROBE_DEVICE])
    figures: dict[str, Any] = {
        "devices": opts.devices,
        "seconds": opts.seconds,
        "processes": opts.processes,
        "window": opts.window,
        "host": host,
    }
    server.start()
    try:
        phases = ["plain", *(["tls"] if opts.tls else []), *(["typed"] if opts.typed else [])]
        for phase in phases:
            if phase == "typed":
                say("typed ingest: the devices get a template declaring every field")
                _type_devices(server)
            say(f"aislehub {phase}: connecting, then {opts.seconds:g} s of load")
            figures[phase] = _aislehub_phase(server, ids, opts, phase)
        figures["peak_rss_mb"] = round(server.peak_rss_mb(), 1)
    finally:
        status = server.stop()
    if status != 0:
        raise RuntimeError(f"aislehub serve exited with {status}; log:\n{server.tail_log()}")
    _add_stored(figures, server, phases)
    typed, plain = figures.get("typed"), figures["plain"]
    if typed:  # every field is declared, so none may be kept aside
        typed.update(typing_figures(server.telemetry_path, DEVICE_PREFIX))
    figures["typed_ratio"] = (
        round(typed["acked_per_s"] / plain["acked_per_s"], 3)
        if typed and plain["acked_per_s"]
        else None
    )
    if opts.reference and mosquitto_available():
        say(f"mosquitto: connecting, then {opts.seconds:g} s of load")
        figures["mosquitto"] = _mosquitto_phase(work, host, ids, opts)
        ref = figures["mosquitto"]["acked_per_s"]
        for key, phase in (("ratio", "plain"), ("ratio_tls", "tls")):
            mine = figures.get(phase)
            figures[key] = round(mine["acked_per_s"] / ref, 3) if mine and ref else None
    else:
        figures["mosquitto"] = figures["ratio"] = figures["ratio_tls"] = None
    if opts.backend == "scale":
        _add_scale(work, ids, opts, figures, say)
    return figures


def _add_scale(
    work: Path, ids: tuple[str, ...], opts: IngestOptions, figures: dict[str, Any], say: Any
) -> None:
    from aislehub.bench.scale import run_scale

    phases = ["plain", *(["tls"] if opts.tls else [])]
    say(f"scale-out: serve --workers {opts.workers} on PostgreSQL + NATS JetStream")

    def phase(server: BenchServer, name: str) -> dict[str, Any]:
        say(f"scale {name}: connecting, then {opts.seconds:g} s of load")
        return _aislehub_phase(server, ids, opts, name)

    scale = run_scale(work, ids, PROBE_DEVICE, opts.workers, phases, phase)
    figures["scale"] = scale
    for phase_name in phases:
        figures[f"scale_{phase_name}"] = scale[phase_name]
    embedded = figures["plain"]["acked_per_s"]
    figures["scale_ratio"] = (
        round(scale["plain"]["acked_per_s"] / embedded, 3) if embedded else None
    )


def _aislehub_phase(
    server: BenchServer, ids: tuple[str, ...], opts: IngestOptions, phase: str
) -> dict[str, Any]:
    target = server.target(phase == "tls")
    probe_target = server.target(False)
    probe = LatencyProbe(
        probe_target, server.host, server.http_port, server.api_token, PROBE_DEVICE
    )
    probe.connect()
    try:
        spec = LoadSpec(
            target,
            ids,
            opts.seconds,
            opts.window,
            opts.processes,
            properties=(("phase", phase),),
        )

        def sample() -> None:  # called as the window opens, START_DELAY before its start
            probe.start_sampling(until=time.monotonic() + START_DELAY + opts.seconds)

        result = run_load(spec, on_start=sample)
        probe.stop_sampling()
        caught = probe.catch_up(CATCH_UP_TIMEOUT)
        caught_up = time.monotonic() - result.started_at if caught else None
    finally:
        probe.close()
    figures = _load_figures(result)
    figures.update(
        {
            "caught_up_s": None if caught_up is None else round(caught_up, 3),
            "latency_p50_ms": ms(percentile(probe.samples, 50)),
            "latency_p99_ms": ms(percentile(probe.samples, 99)),
            "latency_max_ms": ms(max(probe.samples, default=None)),
            "latency_samples": len(probe.samples),
            "latency_missed": probe.missed,
            "api_latest_p50_ms": ms(percentile(probe.api_times, 50)),
            "api_latest_p99_ms": ms(percentile(probe.api_times, 99)),
            "api_latest_requests": len(probe.api_times),
            "_latencies": probe.samples,
        }
    )
    return figures


def _type_devices(server: BenchServer) -> None:
    """Publish a template for the bench payload and assign it to every load device.

    The template goes through the API; the assignment is one UPDATE of the metadata
    store (a thousand PATCH requests would time the API), which the store writer's
    catalog notices within its poll interval, like any other process's write.
    """
    fields = {"outlet": "string", "temperature": "double", "humidity": "double"}
    fields |= {"doorOpen": "boolean", "compressorAmps": "double", "seq": "long"}
    fields["mid"] = "string"
    template = {
        "@type": ["ModelDefinition", "DeviceModel"],
        "displayName": "Bench cooler",
        "capabilityModel": {
            "@id": BENCH_MODEL,
            "@type": "Interface",
            "contents": [
                {"@type": "Telemetry", "name": name, "schema": schema}
                for name, schema in fields.items()
            ],
        },
    }
    url = f"{server.api_base}/api/deviceTemplates/{BENCH_TEMPLATE}"
    reply = httpx.put(
        url,
        json=template,
        params={"api-version": "2022-07-31"},
        headers={"Authorization": server.api_token},
        timeout=30,
    )
    reply.raise_for_status()
    server.assign_template(DEVICE_PREFIX, BENCH_TEMPLATE)
    time.sleep(CATALOG_SETTLE)


def _load_figures(result: LoadResult) -> dict[str, Any]:
    return {
        "acked_per_s": round(result.acked_per_s, 1),
        "acked_per_s_to_drain": round(result.drained_per_s, 1),
        "acked_in_window": result.acked_in_window,
        "acked": result.acked,
        "sent": result.sent,
        "connections": result.connections,
        "connect_failures": result.connect_failures,
        "connect_s": round(result.connect_seconds, 2),
        "setup_s": round(result.setup_seconds, 2),
        "lost_connections": result.lost_connections,
        "puback_p50_ms": ms(percentile(result.latencies, 50)),
        "puback_p99_ms": ms(percentile(result.latencies, 99)),
        "errors": result.errors[:5],
    }


def _add_stored(figures: dict[str, Any], server: BenchServer, phases: list[str]) -> None:
    stored = stored_by_phase(server.telemetry_path, DEVICE_PREFIX)
    samples: list[float] = []
    for phase in phases:
        f = figures[phase]
        f["stored"] = stored.get(phase, 0)
        f["stored_per_s"] = round(f["stored"] / f["caught_up_s"], 1) if f["caught_up_s"] else None
        samples += f.pop("_latencies")
    figures["stored_per_s"] = figures["plain"]["stored_per_s"]
    figures["latency_p50_ms"] = ms(percentile(samples, 50))
    figures["latency_p99_ms"] = ms(percentile(samples, 99))


def _mosquitto_phase(
    work: Path, host: str, ids: tuple[str, ...], opts: IngestOptions
) -> dict[str, Any]:
    port = free_port(host)
    broker = Mosquitto(host, port, work)
    broker.start()
    try:
        sub = Subscriber(host, port)
        sub.start()
        try:
            spec = LoadSpec(
                Target(host, port, Dialect()),
                ids,
                opts.seconds,
                opts.window,
                opts.processes,
                properties=(("phase", "mosquitto"),),
            )
            result = run_load(spec)
        finally:
            received = sub.stop()
    finally:
        broker.stop()
    figures = _load_figures(result)
    figures["subscriber_received"] = received
    return figures


def _say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _quiet(text: str) -> None:
    pass
