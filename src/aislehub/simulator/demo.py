"""``aislehub demo``: an install, the whole server and a fleet of coolers in one process.

The first run creates the install (CA, server certificate for ``localhost`` and
``127.0.0.1``, app, enrollment groups) and keeps the admin API token in
``<data-dir>/demo-token.txt`` (mode 0600) so later runs can show it again. The server
listens for MQTT over TLS on 8883 (the only port the official SDK dials) when it can bind
it, else on a free port; WebSockets on 443 only when that is free. The simulated coolers
are real clients of the gateway: they provision through DPS and speak MQTT over TLS.

Resource handling: the server and the fleet run until SIGINT or SIGTERM, then the fleet
disconnects and the server shuts down in order.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from aislehub.hub.auth import DEFAULT_GROUP
from aislehub.install import Install, initialize
from aislehub.runtime import running
from aislehub.settings import Settings, load_settings
from aislehub.simulator.fleet import FleetStatus, run_fleet
from aislehub.simulator.transport import device_ssl_context
from aislehub.store.metadata import MetadataStore

TOKEN_FILE = "demo-token.txt"
SDK_MQTT_PORT = 8883  # hard-coded in the SDK (contract §1)
SDK_WS_PORT = 443
DEMO_INTERVAL_S = 5.0
PROGRESS_EVERY_S = 30.0
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})


@dataclass(frozen=True, slots=True)
class DemoSetup:
    """Everything read from disk before the event loop starts."""

    settings: Settings
    install: Install
    token: str | None
    group_key: str
    ca_pem: str


def run_demo(data_dir: Path, devices: int, http_port: int, bind: str) -> int:
    """Run until Ctrl-C or SIGTERM; returns the process exit code (0)."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_demo(prepare_demo(data_dir, http_port, bind), devices))
    return 0


def prepare_demo(data_dir: Path, http_port: int, bind: str) -> DemoSetup:
    install, token = ensure_install(data_dir)
    return DemoSetup(
        demo_settings(data_dir, http_port, bind),
        install,
        token,
        read_group_key(data_dir, install),
        Path(install.ca_cert_path).read_text(),
    )


async def _demo(setup: DemoSetup, devices: int) -> None:
    settings, install = setup.settings, setup.install
    stop = _stop_on_signals()
    async with running(settings):
        print(banner(settings, install, setup.token, setup.group_key), flush=True)
        status = FleetStatus()
        fleet = run_fleet(
            install.hostname,
            settings.mqtt_port,
            install,
            setup.group_key,
            devices,
            DEMO_INTERVAL_S,
            device_ssl_context(setup.ca_pem),
            stop,
            address=dial_address(settings.bind),
            status=status,
        )
        async with asyncio.TaskGroup() as tg:
            tg.create_task(fleet, name="demo fleet")
            tg.create_task(_report(status, devices, stop), name="demo progress")
        print("stopping…", flush=True)


# --- install and settings -----------------------------------------------------------------


def ensure_install(data_dir: Path) -> tuple[Install, str | None]:
    """Load the install, or create one; the admin token is kept in demo-token.txt."""
    token_path = data_dir / TOKEN_FILE
    if Install.path(data_dir).exists():
        token = token_path.read_text().strip() if token_path.is_file() else None
        return Install.load(data_dir), token
    install, token = initialize(data_dir, ["localhost"], ["127.0.0.1"])
    write_secret(token_path, token + "\n")
    return install, token


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only (0600), even if the file existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)


def read_group_key(data_dir: Path, install: Install) -> str:
    """The primary key of the default symmetric-key enrollment group."""
    settings = load_settings(data_dir)
    store = MetadataStore(settings.metadata_url)
    try:
        group = store.get_group(install.app_id, DEFAULT_GROUP)
    finally:
        store.close()
    if group is None:
        raise RuntimeError(f"enrollment group {DEFAULT_GROUP!r} is missing from {data_dir}")
    return str(group.attestation["symmetricKey"]["primaryKey"])


def demo_settings(data_dir: Path, http_port: int, bind: str) -> Settings:
    """MQTT on 8883 if free, else any free port; WebSockets on 443 if free, else off (0)."""
    mqtt_port = SDK_MQTT_PORT if can_bind(bind, SDK_MQTT_PORT) else free_port(bind)
    ws_port = SDK_WS_PORT if can_bind(bind, SDK_WS_PORT) else 0
    return load_settings(data_dir).with_overrides(
        bind=bind, mqtt_port=mqtt_port, ws_port=ws_port, http_port=http_port
    )


def can_bind(host: str, port: int) -> bool:
    try:
        with socket.create_server((host, port)):
            return True
    except OSError:  # in use, or a privileged port
        return False


def free_port(host: str) -> int:
    with socket.create_server((host, 0)) as sock:
        return int(sock.getsockname()[1])


def dial_address(bind: str) -> str:
    """Where local devices connect: the bound address, or loopback for a wildcard bind."""
    return "127.0.0.1" if bind in _ANY_ADDRESS else bind


# --- output -------------------------------------------------------------------------------


def banner(settings: Settings, install: Install, token: str | None, group_key: str) -> str:
    """Everything a user needs to reach the API and point a real device at the server."""
    host = install.hostname if settings.bind in _ANY_ADDRESS else settings.bind
    base = f"http://{host}:{settings.http_port}"
    lines = [
        "aislehub demo is running (Ctrl-C to stop)",
        f"  API          {base}/api   (add ?api-version=2022-07-31)",
        f"  API docs     {base}/docs",
        f"  admin token  {token or '(not kept: it was printed when the install was created)'}",
        f"  ID scope     {install.id_scope}",
        f"  group key    {group_key}   (enrollment group {DEFAULT_GROUP})",
        f"  MQTT/TLS     {settings.bind}:{settings.mqtt_port}"
        + (f", WebSockets :{settings.ws_port}" if settings.ws_port else ", WebSockets off"),
        f"  CA           {install.ca_cert_path}",
        *port_notes(settings, install),
        "",
        *sdk_snippet(install, group_key),
    ]
    return "\n".join(lines)


def port_notes(settings: Settings, install: Install) -> list[str]:
    """Warnings when a real SDK device could not reach the server as configured."""
    notes = []
    if settings.mqtt_port != SDK_MQTT_PORT:
        notes += [
            f"  note: port {SDK_MQTT_PORT} was busy, so MQTT listens on {settings.mqtt_port};"
            f" the SDK only dials {SDK_MQTT_PORT}.",
            f"        Forward it, e.g. sudo iptables -t nat -A OUTPUT -p tcp"
            f" -d {dial_address(settings.bind)} --dport {SDK_MQTT_PORT}"
            f" -j REDIRECT --to-ports {settings.mqtt_port}",
        ]
    if settings.bind not in _ANY_ADDRESS and settings.bind not in install.ips:
        notes.append(
            f"  note: the server listens on {settings.bind} only, but devices dial"
            f" {install.hostname!r} (the certificate names {', '.join(install.hostnames)})"
        )
    return notes


def sdk_snippet(install: Install, group_key: str) -> list[str]:
    """Six lines of Python for the unmodified azure-iot-device SDK (pip install it)."""
    ca = install.ca_cert_path
    return [
        "Point a real device at it (pip install azure-iot-device); the key derivation is DPS's:",
        "  import base64, hashlib, hmac; from azure.iot.device import IoTHubDeviceClient,"
        " ProvisioningDeviceClient",
        f"  key = base64.b64encode(hmac.new(base64.b64decode({group_key!r}), b'my-device',"
        " hashlib.sha256).digest()).decode()",
        f"  pdc = ProvisioningDeviceClient.create_from_symmetric_key(provisioning_host="
        f"{install.hostname!r}, registration_id='my-device', id_scope={install.id_scope!r},"
        f" symmetric_key=key, server_verification_cert=open({ca!r}).read())",
        "  reg = pdc.register().registration_state",
        "  dev = IoTHubDeviceClient.create_from_symmetric_key(symmetric_key=key,"
        " hostname=reg.assigned_hub, device_id=reg.device_id,"
        f" server_verification_cert=open({ca!r}).read())",
        "  dev.connect(); dev.send_message('{\"temperature\": 4.2}')",
    ]


async def _report(status: FleetStatus, devices: int, stop: asyncio.Event) -> None:
    """One line when the whole fleet is up, then one every PROGRESS_EVERY_S until ``stop``."""
    while status.connected + status.failed < devices and not await _wait(stop, 0.5):
        pass
    while not stop.is_set():
        print(
            f"fleet: {status.connected}/{devices} coolers online, "
            f"{status.messages_sent} messages sent, {status.failed} failed",
            flush=True,
        )
        await _wait(stop, PROGRESS_EVERY_S)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Wait for ``stop`` at most ``seconds``; True if it is set."""
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass
    return stop.is_set()


def _stop_on_signals() -> asyncio.Event:
    """An event set by the first SIGINT/SIGTERM; a second one interrupts at once."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal() -> None:
        stop.set()
        for sig in signals:
            loop.remove_signal_handler(sig)  # back to KeyboardInterrupt / default action

    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    return stop
