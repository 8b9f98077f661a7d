"""The retail application templates, shipped as package data (docs/templates-format.md).

Each directory holds ``template.json`` (an IoT Central DeviceTemplate), ``rules.json``,
``dashboard.json`` and ``simulator.json``; this module finds them with
:mod:`importlib.resources` (so they work from a wheel or a zip) and reads them. The code
that *interprets* each file lives with its feature: :mod:`aislehub.models` parses
templates, :mod:`aislehub.templates.checks` checks the rules and dashboard shapes,
:mod:`aislehub.simulator.profile` reads the simulator profiles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

__all__ = ["FILES", "AppTemplate", "load", "load_all", "names"]

FILES = ("template.json", "rules.json", "dashboard.json", "simulator.json")
Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AppTemplate:
    """One application template: the four documents, as parsed JSON."""

    name: str
    template: Json
    rules: list[Json]
    dashboard: Json
    simulator: Json

    @property
    def template_id(self) -> str:
        return str(self.template["@id"])

    @property
    def model_id(self) -> str:
        """The capability model's @id: what a device announces (Plug and Play model id)."""
        return str(self.template["capabilityModel"]["@id"])


def _root() -> Traversable:
    return resources.files(__name__)


@cache
def names() -> tuple[str, ...]:
    """The template directories, sorted."""
    return tuple(
        sorted(
            entry.name
            for entry in _root().iterdir()
            if entry.is_dir() and entry.joinpath("template.json").is_file()
        )
    )


def _read(directory: Traversable, file: str) -> Any:
    return json.loads(directory.joinpath(file).read_text(encoding="utf-8"))


@cache
def load(name: str) -> AppTemplate:
    """The template ``name`` (e.g. ``connected-cooler``); KeyError for an unknown name."""
    if name not in names():
        raise KeyError(f"no application template {name!r}; known: {', '.join(names())}")
    directory = _root().joinpath(name)
    template, rules, dashboard, simulator = (_read(directory, f) for f in FILES)
    return AppTemplate(name, template, rules, dashboard, simulator)


def load_all() -> list[AppTemplate]:
    return [load(name) for name in names()]
