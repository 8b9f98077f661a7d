"""The six application templates: their DTDL parses, their rules and dashboard fit the
documented format and name fields the template has, their simulator profile loads, and
they ship as package data."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

from aislehub.models import load_iot_central_template
from aislehub.simulator.physics import MODELS
from aislehub.simulator.profile import load_profile, plan_devices
from aislehub.templates import FILES, load, load_all, names
from aislehub.templates.checks import TemplateFields, check_app_template, check_rule

EXPECTED = {
    "connected-cooler",
    "display-tracking",
    "shipment-monitoring",
    "micro-fulfilment",
    "in-store-analytics",
    "smart-inventory",
}
ROOT = Path(__file__).resolve().parents[2]


def test_six_templates_are_found() -> None:
    assert set(names()) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_template_parses_and_rules_dashboard_fit_the_format(name: str) -> None:
    app = load(name)
    parsed = load_iot_central_template(app.template)
    assert parsed.root_id == app.model_id
    assert check_app_template(app) == []
    assert app.rules and app.dashboard["tiles"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_simulator_profile_loads_and_targets_the_template(name: str) -> None:
    app = load(name)
    profile = load_profile(app.simulator)
    assert profile.template_id == app.template_id
    assert profile.model_id == app.model_id
    assert profile.model in MODELS
    assert len(plan_devices(profile)) == profile.default_count


def test_demo_fleet_is_about_two_hundred_devices() -> None:
    total = sum(load_profile(a.simulator).default_count for a in load_all())
    assert 150 <= total <= 250


def test_cooler_template_has_what_the_issue_asks() -> None:
    fields = TemplateFields.of(load("connected-cooler").template)
    for telemetry in ("temperature", "condenserTemperature", "doorOpen", "powerW", "location"):
        assert telemetry in fields.telemetry
    assert {"outlet", "outletLocation", "targetTemperature", "firmwareVersion"} <= fields.properties
    assert {"defrost", "reboot"} <= fields.commands


def test_checker_reports_unknown_fields_and_bad_shapes() -> None:
    fields = TemplateFields.of(load("connected-cooler").template)
    bad = {
        "id": "Bad Id",
        "displayName": "x",
        "severity": "loud",
        "target": {"template": "dtmi:aislehub:retail:Cooler;1"},
        "conditions": {
            "match": "all",
            "items": [
                {"type": "telemetry", "field": "nope", "operator": ">", "value": 1},
                {
                    "type": "telemetry",
                    "field": "doorOpen",
                    "operator": ">",
                    "value": 1,
                    "aggregation": "avg",
                    "window": "PT5M",
                },
                {
                    "type": "geofence",
                    "location": "location",
                    "center": {"property": "x"},
                    "radiusMeters": 200,
                },
            ],
        },
    }
    problems = check_rule(bad, fields)
    joined = "\n".join(problems)
    for expected in ("rule.id", "rule.severity", "no telemetry 'nope'", "numeric", "property 'x'"):
        assert expected in joined


def test_package_data_ships_the_json_files() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["aislehub"]
    assert "templates/*/*.json" in patterns
    for name in names():
        for file in FILES:
            assert (ROOT / "src/aislehub/templates" / name / file).is_file()


@pytest.mark.skipif(
    importlib.util.find_spec("aislehub.rules.model") is None, reason="rules engine not built"
)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rules_parse_with_the_rules_engine(name: str) -> None:
    from aislehub.hub.templates import compile_template, parse_document
    from aislehub.rules.model import check_against_template, parse_rule
    from aislehub.store.templates import TemplateRecord

    app = load(name)
    record = TemplateRecord.__new__(TemplateRecord)
    for attr, value in (("id", app.template_id), ("etag", "x"), ("document", app.template)):
        object.__setattr__(record, attr, value)
    compiled = compile_template(record, parse_document(app.template_id, app.template))
    for doc in app.rules:
        check_against_template(parse_rule(doc), compiled)
