"""``aislehub serve`` on the scale-out engines: metadata and telemetry in PostgreSQL, the
ingest log on NATS JetStream, chosen by settings alone (``AISLEHUB_*`` variables here).

A device publishes QoS 1 through the gateway; the API reads it back from PostgreSQL; the
server is killed with SIGKILL and restarted on the same engines: what was acknowledged is
still there, nothing twice, and ingest goes on.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from aislehub.ingest.nats_log import NatsLog
from tests.e2e.test_plain_mqtt import create_device, paho_client, sas
from tests.servers import Server, aislehub, free_port, next_loopback, wait_until
from tests.services import postgres_database, require_nats, unique_name

TEMPLATE = "dtmi:test:CounterTemplate;1"


def _delete_stream(url: str, stream: str) -> None:
    async def delete() -> None:
        log = NatsLog(url, stream, f"aislehub.{stream}")
        await log.start()
        await log.delete_stream()
        await log.close()

    asyncio.run(delete())


@pytest.fixture
def scaled(tmp_path: Path) -> Iterator[Server]:
    nats_url = require_nats()
    stream = unique_name("e2e").upper()
    with postgres_database() as metadata_url, postgres_database() as telemetry_url:
        env = {
            "AISLEHUB_METADATA_DATABASE": metadata_url,
            "AISLEHUB_TELEMETRY_DATABASE": telemetry_url.replace("+psycopg", ""),
            "AISLEHUB_NATS_URL": nats_url,
            "AISLEHUB_NATS_STREAM": stream,
        }
        host = next_loopback()
        data_dir = tmp_path / "install"
        out = subprocess.run(
            aislehub("init", "--data-dir", str(data_dir), "--hostname", host),
            check=True,
            capture_output=True,
            timeout=60,
            env={**os.environ, **env},
        )
        assert not (data_dir / "metadata.sqlite").exists()  # the app lives in PostgreSQL
        server = Server(host, data_dir, free_port(host), free_port(host), json.loads(out.stdout))
        server.env = env
        server.start()
        try:
            yield server
        finally:
            if server.proc is not None:
                server.stop()
            _delete_stream(nats_url, stream)


def stored(server: Server, device_id: str) -> list[float]:
    with server.client() as api:
        r = api.get(f"/devices/{device_id}/telemetry/n/history", params={"from": "2000-01-01"})
    return [p["value"] for p in r.json()["value"]] if r.status_code == 200 else []


def publish(server: Server, device_id: str, key: str, values: range) -> None:
    client, connacks = paho_client(server, device_id, sas(server, device_id, key))
    try:
        assert connacks.get(timeout=10) == 0
        for n in values:
            info = client.publish(f"devices/{device_id}/messages/events/", json.dumps({"n": n}), 1)
            info.wait_for_publish(10)  # PUBACK: JetStream has acknowledged the append
    finally:
        client.loop_stop()
        client.disconnect()


def test_serve_on_postgres_and_nats_survives_kill_9(scaled: Server) -> None:
    key = create_device(scaled, "pg-1")
    publish(scaled, "pg-1", key, range(20))
    assert wait_until(lambda: len(stored(scaled, "pg-1")) == 20)
    assert not (scaled.data_dir / "telemetry.duckdb").exists()
    scaled.kill9()
    scaled.start()
    publish(scaled, "pg-1", key, range(20, 30))
    assert wait_until(lambda: len(stored(scaled, "pg-1")) == 30)
    assert sorted(stored(scaled, "pg-1")) == [float(n) for n in range(30)]
    with scaled.client() as api:  # the query language on PostgreSQL
        model = {
            "@id": "dtmi:test:Counter;1",
            "@type": "Interface",
            "contents": [{"@type": "Telemetry", "name": "n", "schema": "double"}],
        }
        body = {"@type": ["ModelDefinition", "DeviceModel"], "capabilityModel": model}
        assert api.put(f"/deviceTemplates/{TEMPLATE}", json=body).status_code == 200
        assert api.patch("/devices/pg-1", json={"template": TEMPLATE}).status_code == 200
        statement = f"SELECT COUNT(n), MAX(n) FROM {TEMPLATE} WHERE WITHIN_WINDOW(P1D)"

        def answer() -> object:  # the store learns the assignment within a second
            r = api.post("/query", json={"query": statement})
            assert r.status_code == 200, r.text
            return r.json()["results"] if r.json()["results"][0]["count_n"] else None

        assert wait_until(answer) == [{"count_n": 30, "max_n": 29}]
