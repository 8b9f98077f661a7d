"""`aislehub demo` setup: install once, keep the token (0600), fall back from busy ports."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from aislehub.simulator import demo


def test_demo_setup_keeps_token_and_falls_back_from_busy_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "can_bind", lambda host, port: False)  # 8883 and 443 taken
    data_dir = tmp_path / "demo"

    first = demo.prepare_demo(data_dir, 18080, "127.0.0.1")
    token_file = data_dir / demo.TOKEN_FILE
    assert first.token and token_file.read_text().strip() == first.token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert first.settings.mqtt_port not in (0, demo.SDK_MQTT_PORT)
    assert first.settings.ws_port == 0  # WebSockets off: Gateway.start() skips a falsy port
    assert first.ca_pem.startswith("-----BEGIN CERTIFICATE-----")

    second = demo.prepare_demo(data_dir, 18080, "127.0.0.1")
    assert (second.token, second.group_key) == (first.token, first.group_key)
    assert second.install == first.install

    text = demo.banner(
        second.settings, second.install, second.token, second.group_key, ("demo", "pw")
    )
    for expected in (
        "http://127.0.0.1:18080/",
        "http://127.0.0.1:18080/api",
        "http://127.0.0.1:18080/docs",
        "demo / pw",
        first.token,
        first.install.id_scope,
        first.group_key,
        "server_verification_cert=open(",
        f"--to-ports {second.settings.mqtt_port}",
        "WebSockets off",
    ):
        assert expected in text
    assert len(demo.sdk_snippet(first.install, first.group_key)) == 4  # title + 3 lines


def test_dial_address_maps_wildcards_to_loopback() -> None:
    assert demo.dial_address("0.0.0.0") == "127.0.0.1"
    assert demo.dial_address("127.0.0.5") == "127.0.0.5"


def test_fleet_specs_cover_six_templates_at_any_size() -> None:
    specs = demo.fleet_specs(None)
    assert len(specs) == 6 and 150 <= sum(len(s.plans) for s in specs) <= 250
    small = demo.fleet_specs(12)
    assert all(len(s.plans) >= 1 for s in small) and sum(len(s.plans) for s in small) <= 14
