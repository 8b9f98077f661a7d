"""Configuration, read once into a frozen object.

Precedence, lowest first: defaults, a TOML file (``AISLEHUB_CONFIG`` or
``<data-dir>/aislehub.toml``), ``AISLEHUB_*`` environment variables, then command-line
flags. Nothing secret lives here: keys and tokens stay in the data directory and the
metadata store.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

# IoT Hub's device-to-cloud message limit; the SDK refuses larger messages itself.
MAX_MESSAGE_BYTES = 256 * 1024

# What one process runs (docs/operations-scale-out.md): device listeners and their links,
# the store writer (the telemetry consumer, one per deployment), the REST API.
ROLES = ("gateway", "ingest", "api", "rules")


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("./data")
    bind: str = "127.0.0.1"
    mqtt_port: int = 8883
    ws_port: int = 443
    http_port: int = 8080
    # Plain MQTT is for development only; off unless asked (1883 often belongs to a broker).
    plain_mqtt_port: int | None = None
    max_connections: int = 50_000
    max_message_bytes: int = MAX_MESSAGE_BYTES
    # Group commit: the log fsyncs at most this often; a PUBACK waits for it.
    commit_interval: float = 0.002
    method_default_timeout: float = 30.0
    # Rules' alert actions: the SMTP server of the email action (plain SMTP, no login), and
    # attempts per webhook/email/command action with the back-off before the second one.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "aislehub@localhost"
    action_attempts: int = 5
    action_backoff: float = 1.0
    log_level: str = "INFO"
    # Scale-out engines (docs/operations-scale-out.md). Unset: the embedded defaults in the
    # data directory (SQLite metadata, DuckDB telemetry, the local segmented log).
    metadata_database: str | None = None  # postgresql+psycopg://… (or sqlite:///…)
    telemetry_database: str | None = None  # postgresql://…
    nats_url: str | None = None  # nats://127.0.0.1:4222: the ingest log on JetStream
    nats_stream: str = "aislehub-ingest"
    # Processes: ``workers`` > 1 makes ``serve`` a supervisor of that many processes
    # (scale-out engines only); ``roles`` is what this process runs, a comma list of ROLES;
    # ``reuse_port`` binds the listeners with SO_REUSEPORT so processes share the ports.
    workers: int = 1
    roles: str = ",".join(ROLES)
    reuse_port: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def role_set(self) -> frozenset[str]:
        """``roles`` parsed; ValueError names an unknown one."""
        chosen = frozenset(r.strip() for r in self.roles.split(",") if r.strip())
        unknown = sorted(chosen - set(ROLES))
        if unknown or not chosen:
            raise ValueError(
                f"unknown role(s) {unknown or [self.roles]}; known: {', '.join(ROLES)}"
            )
        return chosen

    @property
    def scale_out(self) -> bool:
        """All three engines are the shared ones, so several processes may run on them."""
        shared_metadata = not self.metadata_url.startswith("sqlite")
        return bool(self.nats_url and self.telemetry_database and shared_metadata)

    @property
    def pki_dir(self) -> Path:
        return self.data_dir / "pki"

    @property
    def metadata_url(self) -> str:
        return self.metadata_database or f"sqlite:///{self.data_dir / 'metadata.sqlite'}"

    @property
    def telemetry_path(self) -> Path:
        return self.data_dir / "telemetry.duckdb"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    def with_overrides(self, **overrides: Any) -> Settings:
        """Return a copy with every non-None override applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_CASTS: dict[str, Any] = {
    "data_dir": Path,
    "mqtt_port": int,
    "ws_port": int,
    "http_port": int,
    "plain_mqtt_port": int,
    "max_connections": int,
    "max_message_bytes": int,
    "commit_interval": float,
    "method_default_timeout": float,
    "smtp_port": int,
    "action_attempts": int,
    "action_backoff": float,
    "workers": int,
    "reuse_port": lambda v: v if isinstance(v, bool) else str(v).lower() in {"1", "true", "yes"},
}


def load_settings(data_dir: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Defaults ← TOML ← environment. CLI flags are applied by the caller via ``with_overrides``."""
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    base_dir = data_dir or Path(env.get("AISLEHUB_DATA_DIR", "./data"))
    toml_path = Path(env.get("AISLEHUB_CONFIG", base_dir / "aislehub.toml"))
    if toml_path.is_file():
        values.update(tomllib.loads(toml_path.read_text()))
    for f in fields(Settings):
        key = f"AISLEHUB_{f.name.upper()}"
        if key in env:
            values[f.name] = env[key]
    values["data_dir"] = base_dir
    known = {f.name for f in fields(Settings)}
    extra = {k: v for k, v in values.items() if k not in known}
    typed: dict[str, Any] = {
        k: _CASTS.get(k, str)(v) if v is not None else None
        for k, v in values.items()
        if k in known and k != "extra"
    }
    return Settings(**typed, extra=extra)
