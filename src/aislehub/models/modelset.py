"""A checked set of Interfaces and the flattened views later code asks for.

``ModelSet.root(id)`` answers "what does a device with this model id send, report, accept":
the root Interface's contents with everything it inherits, and one view per Component.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from aislehub.models.elements import (
    Command,
    Component,
    Content,
    Interface,
    Property,
    Relationship,
    Telemetry,
)


def flatten(interfaces: Mapping[str, Interface], iid: str) -> list[tuple[str, Content]]:
    """(owner id, content) for an Interface and what it inherits, bases first (v2 §Interface).

    Depth-first in ``extends`` order; each Interface counts once even when inherited along two
    paths; cycles are cut (``resolve`` reports them). Iterative, so no chain is too long.
    """
    seen: set[str] = set()
    order: list[str] = []
    stack: list[tuple[str, bool]] = [(iid, False)]
    while stack:
        current, done = stack.pop()
        if done:
            order.append(current)
        elif current not in seen and current in interfaces:
            seen.add(current)
            stack.append((current, True))
            stack.extend((base, False) for base in reversed(interfaces[current].extends))
    return [(owner, content) for owner in order for content in interfaces[owner].contents]


@dataclass(frozen=True, slots=True)
class ResolvedInterface:
    """An Interface with its inherited contents; lookups by name."""

    interface: Interface
    contents: tuple[Content, ...]
    _by_name: Mapping[str, Content] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = MappingProxyType({content.name: content for content in self.contents})
        object.__setattr__(self, "_by_name", by_name)

    @property
    def id(self) -> str:
        return self.interface.id

    def content(self, name: str) -> Content | None:
        return self._by_name.get(name)

    def telemetry(self, name: str) -> Telemetry | None:
        found = self._by_name.get(name)
        return found if isinstance(found, Telemetry) else None

    def property(self, name: str) -> Property | None:
        found = self._by_name.get(name)
        return found if isinstance(found, Property) else None

    def command(self, name: str) -> Command | None:
        found = self._by_name.get(name)
        return found if isinstance(found, Command) else None

    def relationship(self, name: str) -> Relationship | None:
        found = self._by_name.get(name)
        return found if isinstance(found, Relationship) else None

    def of_kind(self, kind: type[Content]) -> tuple[Content, ...]:
        return tuple(content for content in self.contents if isinstance(content, kind))


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A device model: the root view plus one view per Component (``None`` = the root)."""

    root: ResolvedInterface
    components: Mapping[str, ResolvedInterface]

    @property
    def id(self) -> str:
        return self.root.id

    @property
    def contents(self) -> tuple[Content, ...]:
        return self.root.contents

    def interface(self, component: str | None) -> ResolvedInterface | None:
        return self.root if component is None else self.components.get(component)

    def telemetry(self, component: str | None, name: str) -> Telemetry | None:
        view = self.interface(component)
        return view.telemetry(name) if view else None

    def property(self, component: str | None, name: str) -> Property | None:
        view = self.interface(component)
        return view.property(name) if view else None

    def command(self, component: str | None, name: str) -> Command | None:
        view = self.interface(component)
        return view.command(name) if view else None


@dataclass(frozen=True, slots=True)
class ModelSet:
    """Interfaces by @id, all references resolved and every rule checked."""

    interfaces: Mapping[str, Interface]

    def __contains__(self, iid: object) -> bool:
        return iid in self.interfaces

    def __iter__(self) -> Iterator[str]:
        return iter(self.interfaces)

    def __len__(self) -> int:
        return len(self.interfaces)

    def resolved(self, iid: str) -> ResolvedInterface:
        """One Interface with its inherited contents; KeyError if the set lacks it."""
        interface = self.interfaces[iid]
        return ResolvedInterface(interface, tuple(c for _, c in flatten(self.interfaces, iid)))

    def root(self, iid: str) -> ResolvedModel:
        """The device model rooted at ``iid``; KeyError if the set lacks it."""
        root = self.resolved(iid)
        components = {
            content.name: self.resolved(content.interface_id)
            for content in root.contents
            if isinstance(content, Component)
        }
        return ResolvedModel(root, MappingProxyType(components))
