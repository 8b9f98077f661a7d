"""`aislehub demo` itself, seen in headless Chromium: sign in with the login the banner
prints, open the cooler dashboard, and find the cooler the simulator moved (the cooler
profile moves one cooler 900 m from its outlet a minute after the fleet starts)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import aislehub, free_port, next_loopback

pytestmark = pytest.mark.timeout(240)

DASHBOARD = "cooler-overview"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A running demo: its base URL and the login from its banner."""
    host = next_loopback()
    port = free_port(host)
    data_dir = tmp_path_factory.mktemp("demo") / "demo"
    args = ["demo", "--data-dir", str(data_dir), "--bind", host, "--http-port", str(port)]
    proc = subprocess.Popen(
        aislehub(*args, "--devices", "24"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any(line.strip().startswith("login") for line in lines):
            line = proc.stdout.readline().decode()
            assert line, "demo exited early:\n" + "".join(lines)
            lines.append(line)
        login = next(ln for ln in lines if ln.strip().startswith("login")).split(None, 1)[1]
        user, _, password = login.strip().partition(" / ")
        yield f"http://{host}:{port}", user, password
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        proc.stdout.close()


def test_the_demo_cooler_dashboard_marks_the_moved_cooler(
    browser: Any, demo: tuple[str, str, str], artifacts: Path
) -> None:
    base, user, password = demo
    context = browser.new_context(base_url=base)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto("/login")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url("**/")
        deadline = time.monotonic() + 150  # the move comes a minute after the fleet starts
        outside = page.locator("svg.map g.marker.outside")
        while True:
            page.goto(f"/dashboards/{DASHBOARD}")
            if outside.count() == 1 or time.monotonic() > deadline:
                break
            page.wait_for_timeout(3000)
        page.screenshot(path=str(artifacts / "demo-cooler-dashboard.png"), full_page=True)
        assert outside.count() == 1, "no cooler marked outside its outlet"
        assert page.locator("svg.map g.marker").count() > 1
        moved = outside.get_attribute("data-device") or ""
        assert moved.startswith("cooler")
        assert moved in page.locator(".map-outside").inner_text()
    finally:
        context.close()
