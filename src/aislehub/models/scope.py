"""Parser state: where we are in the model (``Scope``), what we found so far (``Registry``).

Everything here is plain data passed down the recursive descent; nothing is global, so parsing
two document sets at once is safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TypeAlias

from aislehub.models import units
from aislehub.models.dialects import QUANTITATIVE_TYPES, Dialect
from aislehub.models.elements import Interface, Schema
from aislehub.models.errors import ModelError
from aislehub.models.rules import RULES

JsonObj: TypeAlias = Mapping[str, object]
Path: TypeAlias = tuple[str, ...]

# No valid model nests deeper than ~30 path segments (10 inline extends, a component, a
# command payload, 5 complex schema levels of ``fields[i] / schema``); we stop descending at 64
# so hostile input gets an error, not Python's RecursionError.
MAX_NESTING = 64


def show(path: Path) -> str:
    return " / ".join(path)


@dataclass
class Sink:
    """Collects every error; ``parse_models`` raises them together at the end."""

    errors: list[ModelError] = field(default_factory=list)

    def add(self, path: Path, rule: str, message: str) -> None:
        self.errors.append(ModelError(show(path), rule, message, RULES[rule].spec))


@dataclass(frozen=True, slots=True)
class ActiveContext:
    """v3 Spec §Context: the DTDL version and the extension contexts in force for an element."""

    dialect: Dialect
    extensions: tuple[str, ...] = ()

    @property
    def quantitative(self) -> bool:
        return QUANTITATIVE_TYPES in self.extensions

    @property
    def open_world(self) -> bool:
        """An extension we do not model fully is active: undefined members are let through.

        This is the reference parser's "AllowUndefinedExtensions" stance (v3 Spec §Model
        completeness lets a service choose); it keeps IoT Central templates importable, whose
        overrides (``displayUnit``, ``minValue`` …) come from ``dtmi:iotcentral:context;2``.
        """
        return any(extension != QUANTITATIVE_TYPES for extension in self.extensions)

    def semantic_table(self) -> units.SemanticTable | None:
        if self.dialect.builtin_semantic_types:
            return units.V2
        return units.QUANTITATIVE_V1 if self.quantitative else None


@dataclass
class Partition:
    """The schemas one Interface may reference by @id (v3 Spec §Partitions and referenceability).

    ``raw`` holds every complex schema with an @id inside the Interface (its ``schemas`` and any
    inline ones); ``done`` memoizes parsed ones so each is parsed (and reported) once.
    """

    owner: str
    raw: dict[str, tuple[Path, ActiveContext, JsonObj]] = field(default_factory=dict)
    done: dict[str, Schema | None] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class InterfaceOrigin:
    """Where an Interface and its extends/contents entries sit, for cross-interface errors."""

    path: Path
    extends_paths: tuple[Path, ...]
    content_paths: tuple[Path, ...]


@dataclass
class Registry:
    sink: Sink = field(default_factory=Sink)
    ids: dict[str, Path] = field(default_factory=dict)  # every @id seen, and where
    interfaces: dict[str, Interface] = field(default_factory=dict)
    origins: dict[str, InterfaceOrigin] = field(default_factory=dict)
    pending_schemas: list[tuple[Path, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Scope:
    path: Path
    ctx: ActiveContext
    registry: Registry
    partition: Partition | None = None

    @property
    def dialect(self) -> Dialect:
        return self.ctx.dialect

    def at(self, *segments: str) -> Scope:
        return replace(self, path=self.path + segments)

    def error(self, rule: str, message: str, *segments: str) -> None:
        self.registry.sink.add(self.path + segments, rule, message)


def entry(key: str, index: int | None, raw: object) -> str:
    """A path segment: ``contents[2] (targetTemperature)``; the name helps a human find it."""
    label = key if index is None else f"{key}[{index}]"
    name = raw.get("name") if isinstance(raw, Mapping) else None
    return f"{label} ({name})" if isinstance(name, str) else label


def items(raw: JsonObj, key: str) -> list[tuple[str, object]]:
    """A set-valued member as (path segment, value) pairs: ``contents[2] (name)``, …

    DTDL allows a single value where a set is expected; it then appears as ``key`` alone.
    """
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        return [(entry(key, None, value), value)]
    return [(entry(key, index, item), item) for index, item in enumerate(value)]
