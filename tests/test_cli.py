"""The ``aislehub`` command offers every subcommand the docs name (several features wire
themselves into cli.py; this catches one being dropped)."""

from __future__ import annotations

import pytest

from aislehub.cli import main

COMMANDS = [
    "init",
    "serve",
    "demo",
    "simulate",
    "device",
    "enrollment",
    "template",
    "rule",
    "alert",
    "job",
    "user",
    "app",
    "cell",
    "bench",
]
SCENARIOS = ["ingest", "query", "anomaly", "simulate", "explorer", "rules"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: aislehub" in capsys.readouterr().out


def test_every_benchmark_scenario_is_offered(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in SCENARIOS)
