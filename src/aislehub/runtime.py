"""One process running the whole embedded product: gateway, ingest, store writer and API.

On the scale-out engines a process may run only some roles (``settings.roles``: gateway,
ingest, api) and routes device-bound operations to the process holding the device
(:mod:`aislehub.hub.nats_routing`); ``serve --workers N`` runs N of them
(:mod:`aislehub.workers`).

Startup order follows the data: stores, then the log (which recovers its tail), then the
store writer (which replays from its committed offset), then listeners. Shutdown runs in
reverse on SIGTERM/SIGINT: listeners close first so no new message is acknowledged, then
the log is flushed and fsynced, then the writer drains it into the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Protocol, cast

import uvicorn
from fastapi import FastAPI

from aislehub.api.app import create_api
from aislehub.api.deps import ApiContext, TelemetryReader
from aislehub.cells import CellParts, Cells
from aislehub.collector import tune_for_serving
from aislehub.gateway import certs
from aislehub.gateway.context import GatewayContext
from aislehub.gateway.server import Gateway
from aislehub.hub.catalog import CatalogSource
from aislehub.hub.hub import DeviceHub
from aislehub.hub.nats_routing import NatsRouter
from aislehub.ingest.columns import DecodeStats
from aislehub.ingest.consumer import StoreWriter
from aislehub.ingest.local_log import LocalLog
from aislehub.ingest.log import IngestLog
from aislehub.install import Install
from aislehub.intelligence.monitor import start_monitor
from aislehub.jobs.service import JobService, timeouts_from
from aislehub.metrics import Metrics
from aislehub.rules.service import RulesService, start_rules
from aislehub.settings import Settings
from aislehub.store.cells import DEFAULT_CELL
from aislehub.store.duckdb_telemetry import DuckDBTelemetryStore
from aislehub.store.metadata import MetadataStore
from aislehub.store.telemetry import TelemetryStore

log = logging.getLogger(__name__)


def _total(stats: DecodeStats, name: str) -> float:
    return float(getattr(stats, name))


class _ApiServer(uvicorn.Server):
    """uvicorn inside our loop: signals are ours, not uvicorn's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(slots=True)
class Runtime:
    settings: Settings
    install: Install
    metrics: Metrics
    store: MetadataStore
    telemetry: Telemetry
    log: IngestLog
    writer: StoreWriter | None  # None unless this process has the ingest role
    hub: DeviceHub
    gateway: Gateway | None  # None unless this process has the gateway role
    api: _ApiServer | None  # None unless this process has the api role


class Telemetry(TelemetryStore, TelemetryReader, Protocol):
    """A telemetry store the API can read: both stores we ship."""


def open_telemetry(settings: Settings) -> Telemetry:
    """DuckDB in the data directory, or PostgreSQL when ``telemetry_database`` is set."""
    if settings.telemetry_database:
        from aislehub.store.postgres_telemetry import PostgresTelemetryStore

        return PostgresTelemetryStore(settings.telemetry_database)
    return DuckDBTelemetryStore(settings.telemetry_path)


# The log's named readers (store writer, rules engine): JetStream holds records for each,
# even before it first reads, so a reader in another process loses nothing.
READERS = ("store", "rules")


def open_ingest_log(settings: Settings) -> IngestLog:
    """The local segmented log, or a JetStream stream when ``nats_url`` is set."""
    if settings.nats_url:
        from aislehub.ingest.nats_log import NatsLog

        stream = settings.nats_stream
        return NatsLog(settings.nats_url, stream, f"aislehub.{stream}", readers=READERS)
    return LocalLog(settings.log_dir, commit_interval=settings.commit_interval)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Runtime]:
    """Start everything (of this process's roles); stop it all, in order, when the block exits."""
    roles = settings.role_set
    install = Install.load(settings.data_dir)
    metrics = Metrics()
    store = MetadataStore(settings.metadata_url)
    telemetry = open_telemetry(settings)
    ingest_log = open_ingest_log(settings)
    await ingest_log.start()
    hub = DeviceHub(store, metrics, install.hostname)
    router = NatsRouter(settings.nats_url, settings.nats_stream, hub) if settings.nats_url else None
    if router is not None:
        await router.start()
        hub.remote = router
    writer = None
    if "ingest" in roles:
        writer = _store_writer(store, hub, ingest_log, telemetry)
        await writer.start()
        _writer_gauges(metrics, writer)
    jobs = JobService(store, hub.templates, hub, timeouts=timeouts_from(settings.extra))

    async def cell_rules(
        cell_id: str, log: IngestLog, cell_writer: StoreWriter | None
    ) -> RulesService:
        name = f"rules@{cell_id}"
        return await start_rules(settings, store, hub, log, cell_writer, metrics, jobs, name)

    # Tenant cells beyond the default one (the log and store above): aislehub.cells.
    cells = Cells(
        settings,
        store,
        CellParts(DEFAULT_CELL, ingest_log, telemetry, writer),
        writer_for=functools.partial(_store_writer, store, hub) if writer is not None else None,
        rules_for=cell_rules if "rules" in roles else None,
    )
    ctx = GatewayContext(settings, hub, ingest_log, metrics, log_for=cells.log_for)
    gateway = None
    if "gateway" in roles:
        tls = certs.server_ssl_context(certs.PkiPaths.in_directory(settings.pki_dir))
        gateway = Gateway(ctx, tls)
    metrics.gauge("mqtt_connections", lambda: float(len(ctx.connections)))
    metrics.gauge("devices_connected", lambda: float(hub.links.count()))
    api_ctx = ApiContext(
        store=store,
        hub=hub,
        telemetry=telemetry,
        metrics=metrics,
        telemetry_for=cells.telemetry_for,
        cell_status=cells.status,
    )
    api = _api_server(settings, api_ctx) if "api" in roles else None
    if api is not None:  # the /jobs routes (the rules engine's job action takes ``jobs`` too)
        cast(FastAPI, api.config.app).state.jobs = jobs
    # The rules engine: the log's second consumer, beside the store writer (rules/service.py).
    rules = None
    if "rules" in roles:
        rules = await start_rules(settings, store, hub, ingest_log, writer, metrics, jobs)
    # The anomaly monitor reads what the store writer stored (DuckDB only): same process.
    anomalies = None
    if writer is not None:
        anomalies = start_monitor(settings, store, telemetry, install.app_id)
    await cells.start()
    cells_task = asyncio.create_task(cells.run_watch(hub), name="cell map watch")
    api_task = asyncio.create_task(_serve_api(settings, api), name="api server")
    events_task = asyncio.create_task(hub.run_event_writer(), name="device event writer")
    watch_task = asyncio.create_task(hub.run_metadata_watch(), name="metadata watch")
    jobs_task = asyncio.create_task(jobs.run(), name="jobs")
    try:
        if gateway is not None:
            await gateway.start()
        while api is not None and not api.started and not api_task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # uvicorn has no event
        if api_task.done():
            api_task.result()
        yield Runtime(
            settings, install, metrics, store, telemetry, ingest_log, writer, hub, gateway, api
        )
    finally:
        jobs_task.cancel()  # a round in flight is resolved by the next claim (jobs.service)
        with contextlib.suppress(asyncio.CancelledError):
            await jobs_task
        if gateway is not None:
            await gateway.stop()
        watch_task.cancel()
        cells_task.cancel()
        events_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await events_task
        if api is not None:
            api.should_exit = True
        with contextlib.suppress(Exception):
            await api_task
        if router is not None:
            hub.remote = None
            await router.close()
        if anomalies is not None:
            await anomalies.close()
        await cells.close()  # every cell but the default one, each as below
        if rules is not None:  # before the writer: it checkpoints its offset
            await rules.close()
        # Store what the log holds, then let the log commit its queue and release its files.
        if writer is not None:
            await writer.close()
        await ingest_log.close()
        telemetry.close()
        store.close()


def _store_writer(
    store: MetadataStore, hub: DeviceHub, log: IngestLog, telemetry: TelemetryStore
) -> StoreWriter:
    return StoreWriter(log, telemetry, catalog=CatalogSource(store, hub.templates))


def _writer_gauges(metrics: Metrics, writer: StoreWriter) -> None:
    metrics.gauge("ingest_lag_records", lambda: float(writer.lag))
    decoded = writer.stats.decode  # running totals, exported as gauges of the totals
    for name in ("invalid_json", "not_object", "unknown_fields", "mistyped_fields"):
        metrics.gauge(f"ingest_{name}_total", functools.partial(_total, decoded, name))


def _api_server(settings: Settings, api_ctx: ApiContext) -> _ApiServer:
    config = uvicorn.Config(
        create_api(api_ctx),
        host=settings.bind,
        port=settings.http_port,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    return _ApiServer(config)


async def _serve_api(settings: Settings, api: _ApiServer | None) -> None:
    """Run the API; with ``reuse_port`` on a socket bound with SO_REUSEPORT (uvicorn has
    no such option), so every worker serves the same HTTP port."""
    if api is None:
        return
    if not settings.reuse_port:
        await api.serve()
        return
    family = socket.getaddrinfo(settings.bind, settings.http_port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.create_server(
        (settings.bind, settings.http_port), family=family, backlog=2048, reuse_port=True
    )
    with sock:
        await api.serve(sockets=[sock])


async def serve_until_signalled(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running(settings) as rt:
        log.info(
            "aislehub serving: mqtts %s:%d, api http://%s:%d",
            settings.bind,
            settings.mqtt_port,
            settings.bind,
            settings.http_port,
        )
        print(
            f"ready: api http://{settings.bind}:{settings.http_port} "
            f"mqtts {settings.bind}:{settings.mqtt_port} app {rt.install.app_id} "
            f"roles {','.join(sorted(settings.role_set))}",
            flush=True,
        )
        tune_for_serving()
        await stop.wait()
    log.info("aislehub stopped cleanly")


def run(settings: Settings) -> None:
    try:
        import uvloop

        uvloop.run(serve_until_signalled(settings))
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        asyncio.run(serve_until_signalled(settings))
