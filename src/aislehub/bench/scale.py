"""``aislehub bench ingest --backend scale``: the same load on ``serve --workers N`` over
PostgreSQL (metadata and telemetry) and NATS JetStream, beside the embedded run.

The engines are the machine's (``AISLEHUB_TEST_POSTGRES``-style admin URL in
``AISLEHUB_BENCH_POSTGRES``, default the ``postgres`` database on 127.0.0.1:5432;
``AISLEHUB_BENCH_NATS``, default ``nats://127.0.0.1:4222``). Each run creates two fresh
databases and a fresh stream with random names and removes them afterwards, whatever
happens in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aislehub.bench.server import BenchServer, pick_loopback, scale_env

__all__ = ["scale_engines", "stored_by_phase_postgres"]

POSTGRES_ADMIN = os.environ.get(
    "AISLEHUB_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
NATS_URL = os.environ.get("AISLEHUB_BENCH_NATS", "nats://127.0.0.1:4222")


@contextlib.contextmanager
def scale_engines() -> Iterator[dict[str, str]]:
    """Fresh metadata and telemetry databases and a stream name; the server's env."""
    tag = f"{os.getpid()}_{secrets.token_hex(3)}"
    names = [f"aislehub_bench_meta_{tag}", f"aislehub_bench_tel_{tag}"]
    admin_url = sa.make_url(POSTGRES_ADMIN)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    stream = f"BENCH_{tag}".upper()
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        urls = [admin_url.set(database=n).render_as_string(hide_password=False) for n in names]
        yield scale_env(urls[0], urls[1].replace("+psycopg", ""), NATS_URL, stream)
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        asyncio.run(_delete_stream(stream))


async def _delete_stream(stream: str) -> None:
    from aislehub.ingest.nats_log import NatsLog

    log = NatsLog(NATS_URL, stream, f"aislehub.{stream}")
    await log.start()
    with contextlib.suppress(Exception):
        await log.delete_stream()
    await log.close()


def stored_by_phase_postgres(telemetry_url: str, device_prefix: str) -> dict[str, int]:
    """Stored messages per ``phase`` custom property in the PostgreSQL telemetry store."""
    url = sa.make_url(telemetry_url).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT coalesce(properties::jsonb->>'phase', ''), count(*) FROM messages "
                    "WHERE starts_with(device_id, :p) GROUP BY 1"
                ),
                {"p": device_prefix},
            ).fetchall()
    finally:
        engine.dispose()
    return {str(phase): int(count) for phase, count in rows}


def run_scale(
    work: Path,
    ids: tuple[str, ...],
    probe_device: str,
    workers: int,
    phases: list[str],
    run_phase: Callable[[BenchServer, str], dict[str, Any]],
) -> dict[str, Any]:
    """The phases against ``serve --workers N`` on fresh scale-out engines."""
    with scale_engines() as env:
        server = BenchServer.create(work / "scale", pick_loopback(salt=7), env, workers)
        server.add_devices([*ids, probe_device])
        figures: dict[str, Any] = {"workers": workers, "host": server.host}
        server.start()
        try:
            for phase in phases:
                figures[phase] = run_phase(server, phase)
            figures["peak_rss_mb"] = round(server.peak_rss_mb(), 1)
        finally:
            status = server.stop()
        if status != 0:
            raise RuntimeError(f"aislehub serve --workers exited with {status}")
        stored = stored_by_phase_postgres(env["AISLEHUB_TELEMETRY_DATABASE"], "bench-")
    for phase in phases:
        f = figures[phase]
        f["stored"] = stored.get(phase, 0)
        f["stored_per_s"] = round(f["stored"] / f["caught_up_s"], 1) if f["caught_up_s"] else None
        f.pop("_latencies", None)
    return figures
