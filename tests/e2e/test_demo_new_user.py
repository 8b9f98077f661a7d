"""`aislehub demo` as a new user runs it: a fresh data dir, one command, serving in 60 s."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import aislehub, free_port, next_loopback, wait_until

pytestmark = pytest.mark.timeout(120)


def test_demo_on_a_clean_data_dir_serves_within_a_minute(tmp_path: Path) -> None:
    host = next_loopback()
    port = free_port(host)
    started = time.monotonic()
    proc = subprocess.Popen(
        aislehub(
            "demo",
            "--data-dir",
            str(tmp_path / "demo"),
            "--bind",
            host,
            "--http-port",
            str(port),
            "--devices",
            "12",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any("symmetric_key=" in line for line in lines):
            line = proc.stdout.readline().decode()
            assert line, "demo exited early:\n" + "".join(lines)
            lines.append(line)
        assert time.monotonic() - started < 60
        base = f"http://{host}:{port}"
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        text = "".join(lines)
        assert f"{base}/" in text and "login" in text and "id_scope=" in text
        token = next(ln.split("admin token", 1)[1].strip() for ln in lines if "admin token" in ln)
        with httpx.Client(
            base_url=f"{base}/api",
            headers={"Authorization": token},
            params={"api-version": "2022-07-31"},
            timeout=30,
        ) as api:
            _check_app(api)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        proc.stdout.close()


def _check_app(api: httpx.Client) -> None:
    templates = api.get("/deviceTemplates").json()
    assert len(templates["value"]) >= 6, templates

    def typed_devices() -> list[dict[str, object]]:
        devices = api.get("/devices").json()["value"]
        return [d for d in devices if d.get("template") and d.get("provisioned")]

    assert len(wait_until(lambda: len(typed_devices()) >= 10 and typed_devices(), 45)) >= 10
