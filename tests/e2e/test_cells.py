"""Tenant cells: two apps in two cells, each with its own JetStream stream and telemetry
database; stopping one cell's database leaves the other cell's ingest and queries working.

Shop A lives in the default cell (the machine's PostgreSQL, the settings' stream); shop B
in cell ``b``, whose telemetry database is a PostgreSQL server of the test's own, so it
can be stopped. While it is down, B's devices are still acknowledged (its stream holds the
records), B's telemetry reads answer 503 in the API's error shape, and A is untouched;
once it is back, B's writer stores what it missed, each message once.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest

from aislehub.protocol.sas import generate_sas_token
from tests.e2e.test_plain_mqtt import create_device
from tests.e2e.test_scale_engines import _delete_stream
from tests.pg_cluster import PrivatePostgres, private_postgres
from tests.servers import Server, aislehub, free_port, init_server, next_loopback, wait_until
from tests.services import postgres_database, require_nats, unique_name


@dataclass
class Shop:
    server: Server  # the same server, with this app's API token
    host: str  # the hub host name its devices dial: <subdomain>.<anything>

    def connect(self, device_id: str, key: str) -> mqtt.Client:
        username = f"{self.host}/{device_id}/?api-version=2021-04-12"
        sas = generate_sas_token(f"{self.host}/devices/{device_id}", key, int(time.time()) + 600)
        client = mqtt.Client(client_id=device_id, clean_session=True, protocol=mqtt.MQTTv311)
        client.username_pw_set(username, sas)
        client.connect(self.server.host, self.server.plain_port, keepalive=30)
        client.loop_start()
        return client

    def publish(self, device_id: str, key: str, values: range) -> None:
        client = self.connect(device_id, key)
        try:
            for n in values:
                info = client.publish(
                    f"devices/{device_id}/messages/events/", json.dumps({"n": n}), 1
                )
                info.wait_for_publish(10)  # PUBACK: the cell's stream acknowledged it
                assert info.is_published()
        finally:
            client.loop_stop()
            client.disconnect()

    def history(self, device_id: str) -> httpx.Response:
        with self.server.client() as api:
            return api.get(
                f"/devices/{device_id}/telemetry/n/history", params={"from": "2000-01-01"}
            )

    def stored(self, device_id: str) -> list[float]:
        r = self.history(device_id)
        return sorted(p["value"] for p in r.json()["value"]) if r.status_code == 200 else []


def _run(env: dict[str, str], *args: str) -> dict[str, object]:
    out = subprocess.run(
        aislehub(*args), check=True, capture_output=True, timeout=60, env={**os.environ, **env}
    )
    return dict(json.loads(out.stdout))


@pytest.fixture
def two_cells(tmp_path: Path) -> Iterator[tuple[Shop, Shop, PrivatePostgres]]:
    nats_url = require_nats()
    stream_a, stream_b = unique_name("cella").upper(), unique_name("cellb").upper()
    with (
        postgres_database() as metadata_url,
        postgres_database() as telemetry_url,
        private_postgres() as cell_db,
    ):
        env = {
            "AISLEHUB_METADATA_DATABASE": metadata_url,
            "AISLEHUB_TELEMETRY_DATABASE": telemetry_url.replace("+psycopg", ""),
            "AISLEHUB_NATS_URL": nats_url,
            "AISLEHUB_NATS_STREAM": stream_a,
        }
        host = next_loopback()
        data_dir = tmp_path / "install"
        init = _run(env, "init", "--data-dir", str(data_dir), "--hostname", host)
        _run(env, "cell", "add", "b", "--data-dir", str(data_dir), "--stream", stream_b,
             "--telemetry-database", cell_db.url)  # fmt: skip
        shop_b = _run(env, "app", "create", "Shop B", "--data-dir", str(data_dir),
                      "--subdomain", "shopb", "--cell", "b")  # fmt: skip
        server = Server(host, data_dir, free_port(host), free_port(host), init, env=env)
        server.start()
        try:
            a = Shop(server, host)
            b = Shop(replace(server, init={**init, "apiToken": shop_b["apiToken"]}), "shopb.local")
            yield a, b, cell_db
        finally:
            if server.proc is not None:
                server.stop()
            _delete_stream(nats_url, stream_a)
            _delete_stream(nats_url, stream_b)


def test_a_cell_whose_database_stops_leaves_the_other_cell_working(
    two_cells: tuple[Shop, Shop, PrivatePostgres],
) -> None:
    a, b, cell_db = two_cells
    key_a = create_device(a.server, "cooler-a")
    key_b = create_device(b.server, "cooler-b")
    a.publish("cooler-a", key_a, range(5))
    b.publish("cooler-b", key_b, range(5))
    assert wait_until(lambda: len(a.stored("cooler-a")) == 5)
    assert wait_until(lambda: len(b.stored("cooler-b")) == 5)
    # Each app's telemetry is in its own cell's database only.
    assert a.history("cooler-b").status_code == 404  # not A's device
    assert b.history("cooler-a").status_code == 404

    cell_db.stop()
    a.publish("cooler-a", key_a, range(5, 10))  # A: acknowledged, stored, queryable
    assert wait_until(lambda: len(a.stored("cooler-a")) == 10)
    b.publish("cooler-b", key_b, range(5, 10))  # B: acknowledged by B's stream all the same
    down = b.history("cooler-b")
    assert down.status_code == 503, down.text
    assert down.json()["error"]["code"] == "ServiceUnavailable"
    assert a.stored("cooler-a") == [float(n) for n in range(10)]
    ready = httpx.get(f"http://{a.server.host}:{a.server.http_port}/readyz")
    assert ready.status_code == 200  # one cell's database does not take the process out
    assert {c["id"] for c in ready.json()["cells"]} == {"default", "b"}

    cell_db.start()  # B's writer stores what its stream kept, each message once
    assert wait_until(lambda: len(b.stored("cooler-b")) == 10, timeout=30)
    assert b.stored("cooler-b") == [float(n) for n in range(10)]


def test_embedded_cells_and_moving_an_app(tmp_path: Path) -> None:
    """On the embedded engines a cell is a local log and a DuckDB file of its own; moving
    the app disconnects its devices, which reconnect into the new cell."""
    server = init_server(tmp_path)
    data = str(server.data_dir)
    _run({}, "cell", "add", "c1", "--data-dir", data, "--stream", "C1")
    shop = _run({}, "app", "create", "Shop C", "--data-dir", data, "--subdomain", "shopc",
                "--cell", "c1")  # fmt: skip
    server.start()
    try:
        c = Shop(replace(server, init={**server.init, "apiToken": shop["apiToken"]}), "shopc.x")
        key = create_device(c.server, "shelf-1")
        c.publish("shelf-1", key, range(3))
        assert wait_until(lambda: len(c.stored("shelf-1")) == 3)
        assert (server.data_dir / "cells" / "c1" / "telemetry.duckdb").exists()
        assert (server.data_dir / "cells" / "c1" / "log").is_dir()

        gone: list[int] = []
        listener = c.connect("shelf-1", key)
        listener.on_disconnect = lambda client, userdata, rc: gone.append(rc)
        _run({}, "app", "move", str(shop["appId"]), "--data-dir", data, "--cell", "default")
        assert wait_until(lambda: gone, timeout=10)  # closed by the server: the app moved
        listener.loop_stop()
        c.publish("shelf-1", key, range(3, 5))  # now into the default cell
        # The API reads the new cell: history stays in c1 until copied (the documented move).
        assert wait_until(lambda: c.stored("shelf-1") == [3.0, 4.0])
    finally:
        server.stop()
