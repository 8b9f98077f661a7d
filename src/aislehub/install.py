"""An install: the data directory made by ``aislehub init`` and read by ``aislehub serve``.

``install.json`` records the app, the host names devices dial and where the PKI lives.
Keys and tokens are not in it: symmetric keys live in the metadata store and the admin
API token is printed once and stored only as a hash.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aislehub.api.tokens import issue_api_token
from aislehub.gateway import certs
from aislehub.hub.auth import DEFAULT_GROUP
from aislehub.protocol.dps import generate_id_scope
from aislehub.settings import load_settings
from aislehub.store.metadata import App, EnrollmentGroup, MetadataStore

ADMIN_ROLE = "ca310b8d-2f4a-44e0-a36e-957c202cd8d4"  # IoT Central's built-in Administrator role


@dataclass(frozen=True, slots=True)
class Install:
    app_id: str
    id_scope: str
    hostname: str
    hostnames: list[str]
    ips: list[str]
    ca_cert_path: str

    @staticmethod
    def path(data_dir: Path) -> Path:
        return data_dir / "install.json"

    @classmethod
    def load(cls, data_dir: Path) -> Install:
        path = cls.path(data_dir)
        if not path.is_file():
            raise FileNotFoundError(f"{data_dir} is not an aislehub install: run `aislehub init`")
        return cls(**json.loads(path.read_text()))


def new_group_key() -> str:
    import base64

    return base64.b64encode(secrets.token_bytes(32)).decode()


def initialize(
    data_dir: Path,
    hostnames: list[str],
    ips: list[str],
    app_name: str = "aislehub",
    subdomain: str = "app",
    metadata_url: str | None = None,
) -> tuple[Install, str]:
    """Create the install; returns it with the admin API token (shown only now).

    The metadata store is the data directory's SQLite file unless ``metadata_url`` (or the
    settings: ``AISLEHUB_METADATA_DATABASE``, ``aislehub.toml``) names another one."""
    if Install.path(data_dir).exists():
        raise FileExistsError(f"{data_dir} already holds an install")
    data_dir.mkdir(parents=True, exist_ok=True)
    names = hostnames or ["localhost"]
    dns = [h for h in names if not _is_ip(h)]
    all_ips = list(dict.fromkeys([*ips, *(h for h in names if _is_ip(h))] or ["127.0.0.1"]))
    paths = certs.write_install_pki(data_dir / "pki", dns, all_ips)
    store = MetadataStore(metadata_url or load_settings(data_dir).metadata_url)
    try:
        app, token = create_app(store, app_name, subdomain)
    finally:
        store.close()
    install = Install(app.id, app.id_scope, names[0], names, all_ips, str(paths.ca_cert))
    Install.path(data_dir).write_text(json.dumps(asdict(install), indent=2))
    return install, token


def create_app(store: MetadataStore, name: str, subdomain: str) -> tuple[App, str]:
    """A new app (tenant) with IoT Central's two default enrollment groups and an admin
    API token (returned; shown only now)."""
    app = store.create_app(App(secrets.token_hex(16), name, subdomain, generate_id_scope()))
    for group_id, kind in ((DEFAULT_GROUP, "iot"), ("SAS-IoT-Edge-Devices", "iotEdge")):
        store.put_group(
            EnrollmentGroup(
                app.id,
                group_id,
                group_id,
                kind,
                True,
                {
                    "type": "symmetricKey",
                    "symmetricKey": {
                        "primaryKey": new_group_key(),
                        "secondaryKey": new_group_key(),
                    },
                },
            )
        )
    expiry = datetime.now(UTC) + timedelta(days=365)
    token = issue_api_token(store, app.id, "admin", [{"role": ADMIN_ROLE}], expiry)
    return app, token


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
