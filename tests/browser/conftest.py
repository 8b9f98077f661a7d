"""Browser tests: Playwright driving Debian's Chromium against a real server process.

No browser is downloaded: Playwright launches ``/usr/bin/chromium`` (``apt-get install
chromium``; ``.ci/run`` does) headless, with the flags of ../shared/services.md. Without it
the tests skip on a developer's machine and fail in CI (``AISLEHUB_REQUIRE_SERVICES=1``).
Screenshots go to a pytest temporary ``artifacts`` directory, printed at the end.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aislehub.simulator.client import DeviceClient
from aislehub.simulator.handlers import Handlers
from aislehub.simulator.transport import Endpoint
from tests.servers import Server, aislehub, init_server
from tests.services import REQUIRED

CHROMIUM = os.environ.get("AISLEHUB_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
USER, PASSWORD = "operator", "browser-test-password"


# Module scope: while Playwright's sync API is open, the main thread has a running event
# loop, and later tests calling asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if REQUIRED:
            pytest.fail(reason + " (AISLEHUB_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = init_server(tmp_path_factory.mktemp("browser"))
    subprocess.run(
        aislehub("user", "create", USER, "--password-stdin", "--data-dir", str(srv.data_dir)),
        input=PASSWORD.encode() + b"\n",
        check=True,
        capture_output=True,
        timeout=60,
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def page(browser: Any, server: Server, artifacts: Path, request: pytest.FixtureRequest) -> Any:
    context = browser.new_context(base_url=f"http://{server.host}:{server.http_port}")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    tab.screenshot(path=str(artifacts / f"{request.node.name}.png"), full_page=True)
    context.close()


def sign_in(page: Any) -> None:
    page.goto("/login")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def device_key(server: Server, device_id: str, body: dict[str, Any] | None = None) -> str:
    with server.client() as api:
        api.put(f"/devices/{device_id}", json=body or {"displayName": device_id}).raise_for_status()
        creds = api.get(f"/devices/{device_id}/credentials").json()
    return str(creds["symmetricKey"]["primaryKey"])


class Devices:
    """Device clients on their own event loop in a thread (the test drives the browser)."""

    def __init__(self, server: Server) -> None:
        self.endpoint = Endpoint(server.host, server.plain_port, None)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stack: list[DeviceClient] = []

    def connect(
        self, device_id: str, key: str, method: Callable[[str, Any], Any] | None = None
    ) -> DeviceClient:
        handlers = Handlers(method=method)
        client = DeviceClient(self.endpoint, device_id, key, handlers=handlers, seed=1)
        self.run(client.__aenter__())
        self.stack.append(client)
        return client

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        for client in reversed(self.stack):
            self.run(client.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def devices(server: Server) -> Iterator[Devices]:
    found = Devices(server)
    yield found
    found.close()
