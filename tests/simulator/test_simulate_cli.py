"""``aislehub simulate`` for real: a server process, the command in another process, and
what an operator then sees through the API (template assigned, cloud properties set,
telemetry stored)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Server, aislehub, init_server, wait_until

pytestmark = pytest.mark.timeout(90)

COOLER = "dtmi:aislehub:retail:Cooler;1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = init_server(tmp_path)
    srv.start()
    yield srv
    srv.stop()


def test_simulate_runs_a_fleet_against_a_server(server: Server) -> None:
    done = subprocess.run(
        aislehub(
            "simulate",
            "--data-dir",
            str(server.data_dir),
            "--template",
            "connected-cooler",
            "--count",
            "12",
            "--rate",
            "1",
            "--duration",
            "4",
            "--seed",
            "3",
            "--host",
            server.host,
        ),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    table = done.stderr.decode()
    assert "connected-cooler" in table and "12" in table

    with server.client() as api:
        devices = api.get("/devices").json()["value"]
        assert len(devices) == 12
        assert {d["template"] for d in devices} == {COOLER}  # published, then assigned
        assert all(d["simulated"] for d in devices)
        props = api.get("/devices/cooler-001/properties").json()
        assert {"outlet", "outletLocation", "deliveredAt", "firmwareVersion"} <= set(props)
        found = wait_until(
            lambda: api.get("/devices/cooler-012/telemetry/temperature").status_code == 200
        )
        assert found
