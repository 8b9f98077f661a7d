"""``aislehub demo``: an install, the whole server and a retail operation in one process.

The first run creates the install (CA, server certificate for ``localhost`` and
``127.0.0.1``, app, enrollment groups), imports the six application templates
(:mod:`aislehub.templates`) and keeps the admin API token in ``<data-dir>/demo-token.txt``
(mode 0600). The server listens for MQTT over TLS on 8883 (the only port the official SDK
dials) when it can bind it, else on a free port; WebSockets on 443 only when that is free.
Once it serves, the demo loads each template's rules and dashboard and a demo user
through the API (skipped, with a note, where this build has no such route), then runs
about 200 simulated devices — coolers at outlets, display gateways, shipment trackers on
their routes, fulfilment robots, store sensor hubs and shelf readers — that provision
through DPS announcing their template's model id and speak MQTT over TLS, with the
faults of each profile injected on schedule; the server's anomaly monitor (started by the
runtime beside the store writer) watches their telemetry.

Resource handling: the server and the fleet run until SIGINT or SIGTERM, then the fleet
disconnects and the server shuts down in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aislehub.hub.auth import DEFAULT_GROUP
from aislehub.hub.templates import TemplateCatalog
from aislehub.install import Install, initialize
from aislehub.protocol.sas import derive_device_key
from aislehub.runtime import running
from aislehub.settings import Settings, load_settings
from aislehub.simulator.device import SimClock, SimulatedDevice
from aislehub.simulator.fleet import FleetConfig, FleetSpec, FleetStatus, run_fleet
from aislehub.simulator.profile import load_profile
from aislehub.simulator.transport import device_ssl_context
from aislehub.store.cloud_properties import CloudValues
from aislehub.store.metadata import MetadataStore
from aislehub.templates import AppTemplate, load_all

log = logging.getLogger(__name__)

TOKEN_FILE = "demo-token.txt"
USER_FILE = "demo-user.txt"
DEMO_USER = "demo"
SDK_MQTT_PORT = 8883  # hard-coded in the SDK (contract §1)
SDK_WS_PORT = 443
PROGRESS_EVERY_S = 30.0
API_VERSION = "2022-07-31"
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})


@dataclass(frozen=True, slots=True)
class DemoSetup:
    """Everything read from disk before the event loop starts."""

    settings: Settings
    install: Install
    token: str | None
    group_key: str
    ca_pem: str


def run_demo(data_dir: Path, devices: int | None, http_port: int, bind: str) -> int:
    """Run until Ctrl-C or SIGTERM; returns the process exit code (0)."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_demo(prepare_demo(data_dir, http_port, bind), devices))
    return 0


def prepare_demo(data_dir: Path, http_port: int, bind: str) -> DemoSetup:
    install, token = ensure_install(data_dir)
    settings = demo_settings(data_dir, http_port, bind)
    import_templates(settings, install)
    return DemoSetup(
        settings,
        install,
        token,
        read_group_key(data_dir, install),
        Path(install.ca_cert_path).read_text(),
    )


def import_templates(settings: Settings, install: Install) -> list[str]:
    """Publish every application template the app does not have yet; returns their ids."""
    store = MetadataStore(settings.metadata_url)
    try:
        catalog, added = TemplateCatalog(store), []
        for app in load_all():
            if not store.templates.exists(install.app_id, app.template_id):
                catalog.publish(install.app_id, app.template_id, app.template)
                added.append(app.template_id)
        return added
    finally:
        store.close()


def fleet_specs(devices: int | None, seed: int = 0) -> list[FleetSpec]:
    """One spec per template: the profiles' counts, or ``devices`` spread in proportion."""
    apps = load_all()
    profiles = [load_profile(app.simulator) for app in apps]
    total = sum(p.default_count for p in profiles)
    clock = SimClock()
    specs = []
    for profile in profiles:
        count = None
        if devices is not None:
            count = max(1, round(devices * profile.default_count / total))
        specs.append(FleetSpec.build(profile, count, seed=seed, clock=clock))
    return specs


async def _demo(setup: DemoSetup, devices: int | None) -> None:
    settings, install = setup.settings, setup.install
    stop = _stop_on_signals()
    async with running(settings) as rt:
        base = f"http://{dial_address(settings.bind)}:{settings.http_port}"
        notes = await asyncio.to_thread(load_app_content, base, setup.token)
        login = await asyncio.to_thread(ensure_demo_user, base, setup.token, settings.data_dir)
        print(banner(settings, install, setup.token, setup.group_key, login), flush=True)
        for note in notes:
            print(f"  note: {note}", flush=True)
        specs = fleet_specs(devices)
        count = sum(len(s.plans) for s in specs)
        status = FleetStatus()
        config = FleetConfig(
            install.hostname,
            settings.mqtt_port,
            install.id_scope,
            setup.group_key,
            device_ssl_context(setup.ca_pem),
            address=dial_address(settings.bind),
        )
        async with asyncio.TaskGroup() as tg:
            fleet = run_fleet(config, specs, stop, status, operator(rt.store, install.app_id))
            tg.create_task(fleet, name="demo fleet")
            tg.create_task(_report(status, count, stop), name="demo progress")
        print("stopping…", flush=True)


def operator(store: MetadataStore, app_id: str) -> Any:
    """What an operator records when a device joins: simulated, and its cloud properties
    (a cooler's outlet and its location, which the geofence rule and the map read)."""

    def record(device_id: str, sim: SimulatedDevice) -> None:
        device = store.get_device(app_id, device_id)
        if device is not None and not device.simulated:
            device.simulated = True
            store.put_device(device)
        cloud = store.cloud.get(app_id, device_id)
        if not cloud.values:
            values = sim.model.cloud_properties()
            now = _now_iso()
            store.cloud.save(app_id, device_id, CloudValues(values, dict.fromkeys(values, now)))

    async def on_provisioned(device_id: str, sim: SimulatedDevice) -> None:
        try:
            await asyncio.to_thread(record, device_id, sim)
        except Exception:  # an operator's note is not worth a device
            log.exception("%s: recording cloud properties failed", device_id)

    return on_provisioned


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- rules, dashboards and the demo user through the API ------------------------------------


def api_put(base: str, token: str, path: str, body: Any) -> int:
    """PUT a JSON body; returns the HTTP status (404/405: this build has no such route)."""
    request = urllib.request.Request(
        f"{base}/api{path}?api-version={API_VERSION}",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Authorization": token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        if exc.code not in (404, 405):
            log.warning("PUT %s: %s %s", path, exc.code, exc.read()[:300].decode(errors="replace"))
        return int(exc.code)


def load_app_content(
    base: str, token: str | None, apps: list[AppTemplate] | None = None
) -> list[str]:
    """PUT every template's rules and dashboard; notes on what could not be loaded."""
    if token is None:
        return ["the admin token was not kept, so rules and dashboards were not loaded"]
    notes: list[str] = []
    for kind, items in (("rules", _rules), ("dashboards", _dashboards)):
        statuses = [
            api_put(base, token, f"/{kind}/{doc['id']}", doc) for doc in items(apps or load_all())
        ]
        if statuses and all(code in (404, 405) for code in statuses):
            notes.append(f"this build has no {kind} API yet (PUT /api/{kind}/{{id}}): skipped")
        elif any(code >= 300 for code in statuses):
            notes.append(f"some {kind} were refused: see the log")
    return notes


def _rules(apps: list[AppTemplate]) -> list[dict[str, Any]]:
    return [rule for app in apps for rule in app.rules]


def _dashboards(apps: list[AppTemplate]) -> list[dict[str, Any]]:
    return [app.dashboard for app in apps]


def ensure_demo_user(base: str, token: str | None, data_dir: Path) -> tuple[str, str] | None:
    """The demo user's (name, password): created once through ``PUT /api/users/{name}``
    and kept in demo-user.txt (0600); None when this build has no user store."""
    path = data_dir / USER_FILE
    if path.is_file():
        name, _, password = path.read_text().strip().partition(":")
        return name, password
    if token is None:
        return None
    password = secrets.token_urlsafe(12)
    status = api_put(base, token, f"/users/{DEMO_USER}", {"password": password, "role": "admin"})
    if status >= 300:
        return None
    write_secret(path, f"{DEMO_USER}:{password}\n")
    return DEMO_USER, password


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


def banner(
    settings: Settings,
    install: Install,
    token: str | None,
    group_key: str,
    login: tuple[str, str] | None = None,
) -> str:
    """Everything a user needs to reach the UI and API and point a real device at it."""
    host = install.hostname if settings.bind in _ANY_ADDRESS else settings.bind
    base = f"http://{host}:{settings.http_port}"
    user = f"{login[0]} / {login[1]}" if login else "(no user store in this build: use the token)"
    lines = [
        "aislehub demo is running (Ctrl-C to stop)",
        f"  URL          {base}/",
        f"  login        {user}",
        f"  API          {base}/api   (add ?api-version={API_VERSION}); docs {base}/docs",
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


def sdk_snippet(install: Install, group_key: str, registration_id: str = "my-device") -> list[str]:
    """The three values a real device needs (DPS with a symmetric key, the SDK or any
    IoT Hub client), its key already derived from the group key for ``registration_id``."""
    key = derive_device_key(group_key, registration_id)
    return [
        "Point a real device at it (azure-iot-device: ProvisioningDeviceClient"
        ".create_from_symmetric_key, then IoTHubDeviceClient):",
        f"  provisioning_host={install.hostname!r}  id_scope={install.id_scope!r}"
        f"  registration_id={registration_id!r}",
        f"  symmetric_key={key!r}   (another id: aislehub device credentials <id>)",
        f"  server_verification_cert=open({install.ca_cert_path!r}).read()",
    ]


async def _report(status: FleetStatus, devices: int, stop: asyncio.Event) -> None:
    """One line when the whole fleet is up, then one every PROGRESS_EVERY_S until ``stop``."""
    while status.connected + status.failed < devices and not await _wait(stop, 0.5):
        pass
    while not stop.is_set():
        print(
            f"fleet: {status.connected}/{devices} devices online, "
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
